/* global document, window, EventSource */
// Live updates of the console: follows /v1/events (the session cookie authenticates it), moves a run's
// steps as they start and end, draws the copy's progress, and refreshes the other sections with htmx.
// Every page is complete without this script.
(function () {
  'use strict';
  var status = document.getElementById('live-status');
  var shown = (window.understudyShown = []);
  var pending = {};
  var timer = null;

  function refresh() {
    timer = null;
    Object.keys(pending).forEach(function (url) {
      var el = document.querySelector('[data-refresh="' + url + '"]');
      if (el && window.htmx) window.htmx.ajax('GET', url, { target: el, swap: 'outerHTML' });
    });
    pending = {};
  }
  function schedule(selector) {
    document.querySelectorAll(selector).forEach(function (el) {
      if (el.closest('#run') && selector !== '#run') return;
      if (el.closest('#switch') && selector !== '#switch') return;
      pending[el.getAttribute('data-refresh')] = true;
    });
    if (!timer) timer = setTimeout(refresh, 300);
  }

  var chart = null;
  var series = [[], []];
  function plot(event) {
    var p = event.data.progress;
    var el = document.getElementById('copy-chart');
    if (!p || p.bytesDone === undefined || !el || !window.uPlot) return;
    series[0].push(Date.parse(event.at) / 1000);
    series[1].push(p.bytesDone / 1048576);
    if (!chart) {
      chart = new window.uPlot(
        {
          title: 'copy progress (MiB)',
          width: Math.min(el.clientWidth || 600, 600),
          height: 160,
          series: [{}, { label: 'MiB copied', stroke: '#1d4ed8' }],
        },
        series,
        el,
      );
    } else chart.setData(series);
  }

  // The service's traffic during the run: requests/s (the service's own counter) and TCP resets/s
  // (the LCs' kernels), sampled by the daemon once a second; starts with the samples stored so far.
  var trafficEl = document.getElementById('traffic-chart');
  var traffic = [[], [], []];
  var trafficChart = null;
  var trafficShown = (window.understudyTraffic = []);
  if (trafficEl) {
    JSON.parse(trafficEl.getAttribute('data-samples') || '[]').forEach(function (s) {
      traffic[0].push(s[0]);
      traffic[1].push(s[1]);
      traffic[2].push(s[2]);
    });
  }
  function drawTraffic() {
    if (!trafficEl || !window.uPlot || traffic[0].length === 0) return;
    if (!trafficChart) {
      trafficChart = new window.uPlot(
        {
          title: 'service traffic (per second)',
          width: Math.min(trafficEl.clientWidth || 600, 600),
          height: 180,
          series: [
            {},
            { label: 'requests/s', stroke: '#166534' },
            { label: 'TCP resets/s', stroke: '#b91c1c' },
          ],
        },
        traffic,
        trafficEl,
      );
    } else trafficChart.setData(traffic);
  }
  drawTraffic();
  function plotTraffic(event) {
    traffic[0].push(Date.parse(event.at) / 1000);
    traffic[1].push(event.data.requestsPerSecond);
    traffic[2].push(event.data.resetsPerSecond);
    trafficShown.push({
      id: event.id,
      at: event.at,
      requestsPerSecond: event.data.requestsPerSecond,
      resetsPerSecond: event.data.resetsPerSecond,
      shownAt: Date.now(),
    });
    drawTraffic();
  }

  // A switch's page: its traffic samples are charted, its phases and end refresh its section.
  function onSwitchEvent(event) {
    var section = document.getElementById('switch');
    if (!section) return false;
    var d = event.data || {};
    var mine =
      d.switchId === section.getAttribute('data-switch') ||
      (!d.switchId &&
        d.from === section.getAttribute('data-from') &&
        d.to === section.getAttribute('data-to'));
    if (!mine) return false;
    if (event.type === 'traffic') plotTraffic(event);
    if (event.type === 'traffic' || event.type.indexOf('switch.') === 0) schedule('#switch');
    return true;
  }

  function onRunEvent(event) {
    if (onSwitchEvent(event)) return true;
    var section = document.getElementById('run');
    if (!section || section.getAttribute('data-run') !== event.runId) return false;
    if (event.type === 'run.step') {
      var li = document.getElementById('step-' + event.data.step);
      if (li) {
        li.className = 'step s-' + event.data.state;
        li.querySelector('.state').textContent = event.data.state;
        if (event.data.durationMs !== undefined)
          li.querySelector('.time').textContent = (event.data.durationMs / 1000).toFixed(2) + ' s';
        shown.push({
          id: event.id,
          at: event.at,
          step: event.data.step,
          state: event.data.state,
          shownAt: Date.now(),
        });
      }
    } else if (event.type === 'run.note') {
      plot(event);
      schedule('#run');
    } else if (event.type === 'run.state') {
      schedule('#run');
    } else if (event.type === 'traffic') {
      plotTraffic(event);
      schedule('#run');
    }
    return true;
  }

  if (!window.EventSource) return;
  var after = document.body.getAttribute('data-after');
  var source = new EventSource('/v1/events' + (after ? '?after=' + encodeURIComponent(after) : ''));
  source.onopen = function () {
    if (status) status.textContent = 'live';
  };
  source.onerror = function () {
    if (status) status.textContent = 'reconnecting…';
  };
  [
    'run.step',
    'run.note',
    'run.state',
    'switch.phase',
    'switch.state',
    'monitor.poll',
    'monitor.mail',
    'traffic',
    'image.build',
    'approval',
    'audit',
  ].forEach(function (type) {
    source.addEventListener(type, function (message) {
      var event = JSON.parse(message.data);
      onRunEvent(event);
      if ((type.indexOf('run.') === 0 && type !== 'run.note') || type === 'switch.state')
        schedule(
          '[data-refresh="/ui/part/runs"], [data-refresh="/ui/part/lcs"], [data-refresh="/ui/part/switches"]',
        );
      if (type.indexOf('monitor.') === 0)
        schedule('[data-refresh="/ui/part/monitor"], [data-refresh="/ui/part/lcs"]');
      if (type === 'approval' || type === 'audit')
        schedule(
          '[data-refresh="/ui/part/approvals"], [data-refresh="/ui/part/audit"], [data-refresh="/ui/part/lcs"]',
        );
      if (status) status.textContent = 'live · last event ' + event.id;
    });
  });
})();
