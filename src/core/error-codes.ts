/**
 * The catalogue of every error code understudy raises: what it means and how to fix it.
 * `docs/errors.md` is generated from this table (`npm run docs:errors`).
 * Modules add their codes in their own section; keep codes stable once released.
 */
export const errorCatalogue = {
  // --- core
  EXEC_FAILED: {
    meaning: 'An external command exited with an error.',
    fix: 'Read the command and its stderr in the message; fix the cause and retry.',
  },
  EXEC_TIMEOUT: {
    meaning: 'An external command did not finish in time and was killed.',
    fix: 'Check that the machine is not overloaded; raise the timeout if the work is legitimately slow.',
  },
  EXEC_NOT_FOUND: {
    meaning: 'A program understudy needs is not installed.',
    fix: 'Install the Debian package named in the message (apt-get install …).',
  },
  NOT_ROOT: {
    meaning: 'understudy needs root to create namespaces, mounts and network devices.',
    fix: 'Run the command as root (sudo understudy …).',
  },
  INTERNAL: { meaning: 'A bug in understudy.', fix: 'Report it with the stack trace printed by --debug.' },
  INVALID_ARGUMENT: {
    meaning: 'A command-line argument or API field is invalid.',
    fix: 'Correct the value named in the message.',
  },
  CONFIG_INVALID: {
    meaning: 'The configuration file does not validate.',
    fix: 'Fix the field named in the message (path in the file is given).',
  },
  CONFIG_NOT_FOUND: {
    meaning: 'The configuration file does not exist.',
    fix: 'Check the path given with --config.',
  },
  STORE_LOCKED: {
    meaning: 'Another understudy process holds the store busy.',
    fix: 'Wait for it to finish, or check for a stuck process.',
  },
  STATE_DIR_FULL: {
    meaning:
      'The filesystem of the state directory is full: SQLite cannot write the store (SQLITE_FULL). A patch run stops where its journal ends, as if the manager had crashed there; the journal itself stays intact.',
    fix: 'Free space on the filesystem holding the state directory (`df -h <dir>`), then `understudy run resume <run>` (or restart `understudy serve`).',
  },

  // --- host
  HOST_NOT_INITIALISED: {
    meaning: 'The host has no storage pool or network yet.',
    fix: 'Run `understudy host init` first.',
  },
  HOST_CONFLICT: {
    meaning: 'The host was initialised with different settings.',
    fix: 'Run `understudy host destroy` first, or use the same settings.',
  },
  POOL_DEVICE_INVALID: {
    meaning: 'The block device named for the storage pool cannot be used.',
    fix: 'Name an existing, unused block device, or omit --device to use a loop image.',
  },
  POOL_FULL: {
    meaning: 'The storage pool has not enough free space.',
    fix: 'Free space in the pool, or grow it (host init --pool-size on a new host).',
  },
  NETWORK_INVALID: {
    meaning: 'The network settings are invalid.',
    fix: 'Use an IPv4 subnet in CIDR form, e.g. 198.18.0.0/24.',
  },
  HOST_BUSY: {
    meaning: 'The host still has logical computers.',
    fix: 'Destroy them first, or pass --force.',
  },

  // --- images
  IMAGE_NOT_FOUND: {
    meaning: 'No image of that name has been built.',
    fix: 'Run `understudy image build <name>`; `understudy image list` shows what exists.',
  },
  IMAGE_BUILD_FAILED: {
    meaning: 'Building the image failed.',
    fix: 'Read the failing step in the message; nothing half-built was kept.',
  },
  IMAGE_SUITE_UNKNOWN: {
    meaning: 'The Debian archive has no suite of that name (no dists/<suite>/Release).',
    fix: 'Use a suite the archive has, e.g. bookworm or trixie.',
  },
  IMAGE_PACKAGE_UNAVAILABLE: {
    meaning: 'A package asked for is not in the suite of the Debian archive.',
    fix: 'Check the name with `apt-cache policy <package>`, or pick another suite.',
  },
  IMAGE_NO_SPACE: {
    meaning: 'There is not enough free space to build the image.',
    fix: 'Free space in the image cache or the pool; nothing half-built was kept.',
  },
  IMAGE_SOURCE_INVALID: {
    meaning: 'What was given to import is not a root filesystem (a directory or a tar archive of one).',
    fix: 'Give the directory or tarball of a root filesystem with /etc and /usr.',
  },
  IMAGE_EXISTS: {
    meaning: 'An image of that name already exists.',
    fix: 'Choose another name, or pass --rebuild to replace it.',
  },
  IMAGE_UNKNOWN: {
    meaning: 'There is no recipe for an image of that name.',
    fix: 'Use one of: busybox, debian.',
  },

  // --- inventory / drivers
  LC_EXISTS: {
    meaning: 'A logical computer of that name already exists.',
    fix: 'Choose another name, or destroy the existing one first.',
  },
  LC_NOT_FOUND: {
    meaning: 'No logical computer of that name.',
    fix: '`understudy lc list` shows the logical computers.',
  },
  LC_NAME_INVALID: {
    meaning: 'A logical computer name must be 1–20 characters of a-z, 0-9 and -, starting with a letter.',
    fix: 'Rename it.',
  },
  LC_RUNNING: {
    meaning: 'The logical computer is running, and the operation needs it stopped.',
    fix: 'Stop it first (`understudy lc stop`).',
  },
  LC_NOT_RUNNING: {
    meaning: 'The logical computer is not running.',
    fix: 'Start it first (`understudy lc start`).',
  },
  LC_BOOT_FAILED: {
    meaning: 'The logical computer did not come up.',
    fix: 'Read the console log named in the message.',
  },
  LC_STOP_TIMEOUT: {
    meaning: 'The logical computer did not shut down in time and was killed.',
    fix: 'Check the services inside for slow shutdown.',
  },
  SERVICE_INVALID: {
    meaning: 'A service definition (LC YAML, flags or API) does not validate.',
    fix: 'Fix the field named in the message; docs/lxc.md (services) lists what is accepted.',
  },
  SERVICE_NOT_DECLARED: {
    meaning:
      'A patch run or a switch was asked of an LC that declares no service, so nothing says how to check, drain or hold it.',
    fix: 'Declare it: understudy lc service set <lc> --service-unit <unit> (or --service-pid-file) --service-port <port> --health … (docs/lxc.md, services).',
  },
  LXC_IDMAP_UNAVAILABLE: {
    meaning: 'No free range of subordinate uids/gids for an unprivileged LXC logical computer.',
    fix: 'Give root subordinate ids in /etc/subuid and /etc/subgid (scripts/install-deps.sh does), or destroy unused LCs.',
  },
  LXC_IMPORT_NOT_FOUND: {
    meaning: 'There is no LXC container of that name in the given LXC path.',
    fix: 'Give its LXC path (--lxc-path, default /var/lib/lxc); `lxc-ls -P <path>` lists them.',
  },
  LXC_IMPORT_RUNNING: {
    meaning: 'The LXC container to import is running; its disk is copied only while it is stopped.',
    fix: 'Stop it (lxc-stop) and import again.',
  },
  LXC_IMPORT_UNSUPPORTED: {
    meaning:
      'The LXC container to import uses a feature understudy does not carry over (named in the message).',
    fix: 'Remove that setting from the container, or recreate it without it, and import again.',
  },
  RESOURCES_EXCEEDED: {
    meaning: 'The host has not enough CPU, memory or pool space for this.',
    fix: 'Ask for less, or free resources held by other logical computers.',
  },
  ADDRESS_INVALID: {
    meaning: 'A NIC address is invalid, outside the bridge subnet, or in use.',
    fix: 'Pick a free address inside the subnet shown by `understudy host status`.',
  },
  NIC_NOT_FOUND: {
    meaning: 'The logical computer has no NIC of that name.',
    fix: '`understudy lc show <lc>` lists its NICs.',
  },
  NIC_IN_USE: {
    meaning: 'The NIC carries the addresses of an LC that serves; removing it would cut the service.',
    fix: 'Switch the service to another LC first (understudy switch), or remove another NIC.',
  },
  NIC_EXISTS: {
    meaning: 'The logical computer already has a NIC of that name.',
    fix: 'Choose another --name, or leave it out to get the lowest free ethN.',
  },
  DISK_NOT_FOUND: {
    meaning: 'The logical computer has no disk of that name.',
    fix: '`understudy lc show <lc>` lists its disks.',
  },
  DRIVER_UNKNOWN: {
    meaning: 'No partitioning driver of that name.',
    fix: 'Use a driver the registry knows (the message lists them); lxc is the default.',
  },
  DRIVER_RETIRED: {
    meaning:
      "The driver is retired for operators (namespace: not isolated like LXC, root inside can take the host); it runs only in the project's own tests (UNDERSTUDY_TEST_DRIVERS).",
    fix: 'Create the LC on the lxc driver (the default). An existing namespace LC can still be listed, stopped and destroyed.',
  },
  DRIVER_MISMATCH: {
    meaning: 'An operation needs two LCs of the same partitioning driver (moving a NIC).',
    fix: 'Use a switch method that does not move the NIC (swap-address, instant).',
  },
  PATH_OUTSIDE_ROOT: {
    meaning: "A path would leave the logical computer's root filesystem.",
    fix: 'Use a path inside the logical computer.',
  },
  LC_FILE_UNSAFE: {
    meaning:
      'A file the manager was to read from a logical computer (its disk or its control channel) is not a regular file or is too big.',
    fix: 'Look at the file named in the message inside the logical computer; something in it replaced a file with a link, FIFO, device or a huge file.',
  },
  CONTROL_TIMEOUT: {
    meaning: 'A logical computer did not report over its control channel in time.',
    fix: 'Check its console log and start-up scripts.',
  },

  // --- catalogue / monitor / mail / api (patch monitor helper)
  PATCH_NOT_FOUND: {
    meaning: 'No patch of that name in the patch table.',
    fix: '`understudy patch list` shows the registered patches.',
  },
  PATCH_EXISTS: {
    meaning: 'A different patch of that name is already registered.',
    fix: 'Register it under another --name, or keep the registered one.',
  },
  PATCH_FILE_NOT_FOUND: {
    meaning: 'The patch file to register does not exist.',
    fix: 'Check the path (relative paths are taken from the current directory).',
  },
  PATCH_FILE_INVALID: {
    meaning: 'The patch file is not a regular file, is empty, or does not hold a patch of the format given.',
    fix: 'Give the right file, or the --format that matches it (diff, archive, script, deb).',
  },
  PATCH_HASH_MISMATCH: {
    meaning: 'A patch file does not have the sha256 it was declared with.',
    fix: 'The file is corrupt or was tampered with; fetch it again from a trusted source.',
  },
  PATCH_TOO_LARGE: {
    meaning: 'A patch file is larger than the configured size limit.',
    fix: 'Check the source; raise maxPatchBytes of the feed if the size is legitimate.',
  },
  DEMO_ARCHIVE_UNAVAILABLE: {
    meaning:
      "The demo found no security archive among the host's apt sources, or apt has no index of it (apt-get update).",
    fix: 'Add the Debian security archive to /etc/apt/sources.list(.d) and run apt-get update.',
  },
  DEMO_NO_SECURITY_UPDATE: {
    meaning:
      "The host's Debian security archive has no newer version of the demo's package than the image's main archive.",
    fix: 'The demo needs a pending security update to apply; `apt-cache policy nginx` shows both versions.',
  },
  DEMO_SERVICE_DOWN: {
    meaning: "The demo's key-value store did not come up in its LC (its unit's journal is in the message).",
    fix: "Its Node.js is the host's, copied into the LC: the image needs the host's glibc and libstdc++ (a Debian image of the host's release).",
  },
  FEED_NOT_FOUND: { meaning: 'No feed of that name.', fix: '`understudy feed list` shows the feeds.' },
  FEED_EXISTS: {
    meaning: 'A feed of that name already exists.',
    fix: 'Choose another name, or remove the existing feed first.',
  },
  FEED_UNREACHABLE: {
    meaning: 'A patch server or repository could not be reached, or did not answer in time.',
    fix: 'Check the URL and that the server is up; the monitor retries with backoff.',
  },
  FEED_INDEX_INVALID: {
    meaning: 'A patch index or repository index is malformed.',
    fix: 'Fix the index on the server; nothing from it was registered.',
  },
  FEED_SIGNATURE_INVALID: {
    meaning: 'A patch index or InRelease file is unsigned or its signature does not verify.',
    fix: 'Check the configured public key or keyring; never register from an unverified index.',
  },
  FEED_REPLAY: {
    meaning: 'A repository index is older than one already seen, or has expired (replay or freeze attack).',
    fix: 'Check the mirror; the monitor keeps the newer state and retries later.',
  },
  FEED_DATE_INVALID: {
    meaning: 'A repository index is dated in the future (beyond a small clock skew).',
    fix: "Check the server's clock and the host's clock; a future date would stop newer patches from being seen, so the index is refused.",
  },
  DPKG_STATUS_INVALID: {
    meaning: "An LC's dpkg database (/var/lib/dpkg/status) is missing, too large, or lists invalid packages.",
    fix: 'Check the LC is a Debian system; inside it, `dpkg --audit` names a broken database.',
  },
  UPDATE_PACKAGE_NOT_IN_FEED: {
    meaning: 'An upgrade needs a package (or a version of it) that no configured apt feed has.',
    fix: 'Add the feed that carries it (for example the main archive beside the security archive), or leave the update out.',
  },
  UPDATE_DEPENDENCY_UNSATISFIABLE: {
    meaning:
      "An upgrade's dependency can be met neither by the installed packages nor by the feeds (or a held package would have to move).",
    fix: 'Read the dependency in the message; add a feed that carries it, release a hold, or leave the update out.',
  },
  APPROVAL_REJECTED: {
    meaning: 'An approval (mail reply or link) was not accepted.',
    fix: 'Read the reason in the message; compute a fresh code with `understudy approve-code` for the current challenge.',
  },
  MAIL_FAILED: {
    meaning: 'Sending or reading mail failed.',
    fix: 'Check the SMTP/IMAP settings in the configuration and that the servers are up.',
  },
  API_UNAUTHORIZED: {
    meaning: 'The API request has no valid token.',
    fix: 'Send `Authorization: Bearer <token>`: `understudy token create` makes one; `serve` writes the first to <state-dir>/api-token.',
  },
  API_FORBIDDEN: {
    meaning:
      'The API token is valid but its scope does not allow this request (a read-only token asked for a change).',
    fix: 'Use a token with the admin scope: `understudy token create <operator> --scope admin`.',
  },
  API_TOKEN_NOT_FOUND: {
    meaning: 'There is no API token with that id.',
    fix: '`understudy token list` shows the tokens and their ids.',
  },
  API_NOT_AVAILABLE: {
    meaning:
      'The daemon cannot do this: the host is not initialised, or the run is driven by another process.',
    fix: 'Initialise the host (`understudy host init`) and restart `serve`, or act on the run from the process that drives it.',
  },
  API_UNSUPPORTED: {
    meaning:
      'This command cannot go through `--api` (a running `serve`): it acts on what the daemon itself holds, or on nothing of the host.',
    fix: 'Run it without `--api` (and without UNDERSTUDY_API); the message says when `serve` must be stopped first.',
  },
  RUN_CANCELLED: {
    meaning:
      'The patch run was cancelled by an operator before the point of no return; the standby was discarded.',
    fix: 'Nothing to fix: the service stayed on the original LC. Start a new run when ready.',
  },
  RUN_NOT_CANCELLABLE: {
    meaning:
      'The patch run cannot be cancelled: it is finished, or its switch has started (the point of no return).',
    fix: 'After the switch, roll the run back instead: `understudy rollback <run>`.',
  },
  // --- disk-copy
  DISK_COPY_SOURCE_INVALID: {
    meaning: 'The source of a disk copy is not a btrfs subvolume.',
    fix: "Name the host path of the disk's btrfs subvolume (e.g. from `understudy lc show`).",
  },
  DISK_COPY_DESTINATION_INVALID: {
    meaning:
      'The destination pool of a disk copy is not a btrfs filesystem, or the destination already exists.',
    fix: 'Name a directory on a btrfs pool and a destination name not in use there.',
  },
  DISK_COPY_CANCELLED: {
    meaning: 'The disk copy was cancelled; the source is untouched and the partial destination was removed.',
    fix: 'Nothing to clean up; start the copy again when wanted.',
  },
  DISK_COPY_BUSY: {
    meaning: 'A copy job of that id is being made by another live process.',
    fix: 'Wait for that process to finish the copy, or use another job id.',
  },
  DISK_COPY_FAILED: {
    meaning: 'The disk copy failed; the source is untouched and the partial destination was removed.',
    fix: 'Read the cause in the message (btrfs send/receive stderr), fix it and copy again.',
  },
  DISK_COPY_NOT_CONVERGED: {
    meaning: 'The LC wrote faster than the copy could catch up within the configured passes.',
    fix: 'Allow more passes, configure throttling or a long freeze (policy.onNoConvergence), or copy at a quieter time.',
  },
  DISK_COPY_VERIFY_FAILED: {
    meaning: "The copy's tree hash differs from the source's at the cut; the copy was removed.",
    fix: 'Report it as a bug with the differing paths named in the message.',
  },
  DISK_COPY_NOT_FOUND: {
    meaning: 'No disk copy job with that id.',
    fix: 'Check the id printed by `understudy disk copy`.',
  },
  DISK_COPY_FREEZE_FAILED: {
    meaning: 'The writers of the source could not be frozen for the cut (they were thawed again).',
    fix: "Check the LC's processes (a process stuck in the kernel blocks the cgroup freezer) and copy again.",
  },
  DISK_SYNC_FAILED: {
    meaning:
      'The sync of a disk onto its copy failed part-way; the source is untouched and the sync can be run again.',
    fix: 'Read the cause in the message (btrfs send or rsync stderr), fix it and run the sync (or the switch) again.',
  },
  DISK_SYNC_VERIFY_FAILED: {
    meaning: 'After a sync, the paths it carried differ between the source at the cut and the destination.',
    fix: 'Run the sync again; if it persists, report it as a bug with the differing paths named in the message.',
  },
  // --- switch
  SWITCH_NOT_FOUND: {
    meaning: 'There is no switch with that id in the switch journal.',
    fix: '`understudy switches` lists them.',
  },
  SWITCH_PLAN_INVALID: {
    meaning: 'The switch plan is incomplete or contradicts itself (addresses, MACs, NICs).',
    fix: 'Correct the value named in the message.',
  },
  SWITCH_METHOD_UNKNOWN: {
    meaning: 'No switch method of that name.',
    fix: 'Use one of: move-nic, swap-address, instant.',
  },
  SWITCH_ADDRESS_NOT_HELD: {
    meaning: 'The active LC does not hold the service address it is said to hold.',
    fix: 'Check `ip addr` in the LC and the address given; nothing was changed.',
  },
  SWITCH_ADDRESS_CONFLICT: {
    meaning: 'Another machine on the bridge answers ARP for the service address.',
    fix: 'Find the machine with the MAC named in the message and remove the address there; nothing was changed.',
  },
  SWITCH_STANDBY_UNHEALTHY: {
    meaning: "The standby's service failed its health check, so no switch was made.",
    fix: 'Fix the service on the standby (its log tells why) and switch again.',
  },
  SWITCH_HEALTH_FAILED: {
    meaning: 'The service failed its health check on the new LC after the switch.',
    fix: "The switch was reversed; the service stays on the old LC. Check the new LC's service.",
  },
  SWITCH_STEP_FAILED: {
    meaning: 'A step of the switch failed.',
    fix: 'Read the step and cause in the message; the switch was reversed.',
  },
  SWITCH_WRITES_TOO_SLOW: {
    meaning:
      'Writes in flight on the active LC would outlast the hold budget (maxHoldMs); nothing was changed.',
    fix: 'Switch at a quieter moment, raise maxHoldMs, or proceed anyway (onSlowWrites: proceed).',
  },
  SWITCH_REVERSED: {
    meaning: 'The switch failed and was reversed; the service stays on the old LC.',
    fix: 'Read the cause; fix it and switch again.',
  },
  SWITCH_REVERSE_FAILED: {
    meaning: 'The switch failed and undoing it failed too.',
    fix: 'Run `understudy switch show <id>`: it lists the steps not undone; fix by hand or restart the manager to retry.',
  },
  // --- patch run
  RUN_NOT_FOUND: { meaning: 'No patch run with that id.', fix: '`understudy run list` shows the runs.' },
  RUN_NOTHING_TO_DO: {
    meaning: 'No patch is marked to apply at the next run of that LC.',
    fix: 'Mark patches with `understudy patch mark`, or name them with --patches.',
  },
  RUN_INTERRUPTED: {
    meaning: 'The manager was asked to stop; the run stopped at a step boundary and waits for recovery.',
    fix: 'Nothing: the next understudy command (or serve) finishes it. `understudy run show <id>` shows where it stopped.',
  },
  RUN_DATA_MISMATCH: {
    meaning:
      "The whole-tree check after the run's stateful switch found the serving LC's data disk different from the old LC's at the cut (the run has no watch to roll it back).",
    fix: '`understudy run show <id>` names the differing paths. Compare them on both LCs; `understudy rollback <id>` moves the service back with the data written since the switch.',
  },
  RUN_BUSY: {
    meaning: 'The LC is part of an unfinished patch run.',
    fix: 'Resume or roll back that run first (`understudy run list`).',
  },
  RUN_NO_STANDBY: {
    meaning: 'No unused LC covers the LC to patch (step 701).',
    fix: 'Create an idle LC with at least the same CPU share, memory and disks and a NIC on the same network.',
  },
  RUN_PRECONDITION: {
    meaning: 'The LC is not in a state a patch run can start from.',
    fix: 'Read the message; give the LC what it lacks.',
  },
  RUN_MALWARE_FOUND: {
    meaning: 'The scan of the system disk found infected files (step 702); nothing was copied.',
    fix: 'Clean or restore the LC, then run the patch again.',
  },
  SCAN_FAILED: {
    meaning: 'The virus scanner failed.',
    fix: 'Check the signature database given with --scan-database.',
  },
  RUN_PATCH_CORRUPT: {
    meaning: 'A stored patch file no longer matches its sha256.',
    fix: 'Register the patch again from a trusted copy.',
  },
  RUN_PATCH_FAILED: {
    meaning:
      'A patch failed to apply on the standby; the standby was discarded and the service stayed on the original LC.',
    fix: 'Read the patch output in `understudy run show`; fix or replace the patch.',
  },
  RUN_STANDBY_BOOT_FAILED: {
    meaning: 'The standby did not boot from the copy.',
    fix: 'Read its console log (named in the message).',
  },
  RUN_STANDBY_TIMEOUT: {
    meaning: 'The standby did not report its patch results in time; it was discarded.',
    fix: 'Read its console log; raise --boot-timeout for slow patches.',
  },
  RUN_PATCH_UNVERIFIED: {
    meaning:
      "The standby reported a patch applied, but its system disk does not show it (dpkg status, the package's files, the archive's manifest.after); the standby was discarded and the service stayed on the original LC.",
    fix: "Read the differences in the message and the standby's patch output (`understudy run show`); check the patch execution script and the image the standby booted.",
  },
  RUN_STANDBY_DISK_FULL: {
    meaning:
      "The standby's pool ran out of space during the copy or the patch; the standby was discarded (its own disks restored, partial copies removed) and the service stayed on the original LC.",
    fix: 'Free space on the pool named in the message (`understudy host status`), or give the standby a larger pool; then run again.',
  },
  RUN_REPORT_INVALID: {
    meaning: 'The standby sent a malformed patch report.',
    fix: 'Check the patch execution script (assets/patch/understudy-patch, written into the standby).',
  },
  RUN_STANDBY_UNHEALTHY: {
    meaning:
      'The patched service on the standby is not running after its reboot or fails its health check; no switch was made and the service stays on the original LC.',
    fix: "Read the service's log in the message and the patch output (`understudy run show <run>`); fix the patch or the configuration it brings, then run again.",
  },
  RUN_UNDO_FAILED: {
    meaning: 'Discarding the standby after a failure failed.',
    fix: 'The service is on the original LC; inspect the standby by hand.',
  },
  RUN_RECORD_INVALID: {
    meaning:
      "A patch run's record in the store does not have the shape its steps write (changed by hand, or written by an incompatible version of understudy).",
    fix: 'Read the run, step and field in the message; restore the state directory from a backup, or correct that field of the run in the store.',
  },
  RUN_NOT_SWITCHED: {
    meaning: 'Only a run that switched can be rolled back.',
    fix: 'Check the run state with `understudy run show`.',
  },
  // --- fleet (control plane, agents, rollouts)
  FLEET_DB_UNREACHABLE: {
    meaning: "The control plane's PostgreSQL server cannot be reached or refused the connection.",
    fix: 'Check that PostgreSQL runs, the address and port, and that the client certificate is valid and not revoked.',
  },
  FLEET_DB_START_FAILED: {
    meaning: 'A PostgreSQL cluster for the control plane could not be created or started.',
    fix: 'Read the server log named in the message; check the port is free and postgresql-15 is installed.',
  },
  FLEET_CA_FAILED: {
    meaning: 'The fleet certificate authority could not make, sign or revoke a certificate.',
    fix: "Check the CA directory named in the message (made by `understudy control ca`) and openssl's output.",
  },
  FLEET_ENROL_REFUSED: {
    meaning:
      "An agent's enrolment was refused: the one-time token is unknown, used, expired or for another host.",
    fix: 'Make a new token with `understudy control token <host>` and enrol once with it.',
  },
  FLEET_ENROL_UNREACHABLE: {
    meaning:
      "The control plane's HTTPS enrolment endpoint cannot be reached, or its certificate is not the fleet CA's.",
    fix: 'Check the URL, that `understudy control run --enrol-listen` serves it, and that --ca is the fleet CA certificate.',
  },
  FLEET_FORBIDDEN: {
    meaning: 'An agent asked for work or reports of a host that is not its own.',
    fix: 'An agent only acts for the host named in its certificate; check which certificate it uses.',
  },
  FLEET_ROLLOUT_INVALID: {
    meaning: 'A rollout definition is invalid (patch selection, targets, windows or rate controls).',
    fix: 'Correct the field named in the message.',
  },
  FLEET_ROLLOUT_STATE: {
    meaning: 'The rollout is not in a state that allows this action.',
    fix: 'Check the rollout state (fleet.rollouts); a halted, stopped or completed rollout takes no more commands.',
  },
  FLEET_NOT_FOUND: {
    meaning: 'The host, rollout or wave named does not exist in the control plane.',
    fix: 'Check the name; `understudy control compliance` lists enrolled hosts and their LCs.',
  },
} as const satisfies Record<string, { meaning: string; fix: string }>;

export type ErrorCode = keyof typeof errorCatalogue;
