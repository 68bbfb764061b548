/**
 * The control plane's schema `fleet`, as numbered migrations applied once each, in order, in one
 * transaction each, under an advisory lock (two control planes starting together do not race).
 *
 * Trust lives in the database: every agent logs in as its own role (member of `fleet_agent`), and
 * row-level security lets that role see and change only rows of its own host; columns an agent may
 * write are granted one by one, and a trigger refuses any move of a work item out of a final state.
 */
import type pg from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const agentGroupRole = 'fleet_agent';

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'hosts, enrolment, work, reports, inventory, audit',
    sql: `
      CREATE SCHEMA IF NOT EXISTS fleet;
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${agentGroupRole}') THEN
          CREATE ROLE ${agentGroupRole} NOLOGIN;
        END IF;
      END $$;
      GRANT USAGE ON SCHEMA fleet TO ${agentGroupRole};

      CREATE TABLE fleet.hosts (
        id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        role_name text NOT NULL UNIQUE,
        cert_serial text,
        enrolled_at timestamptz,
        revoked_at timestamptz,
        last_seen timestamptz
      );

      CREATE TABLE fleet.enrol_tokens (
        token_hash text PRIMARY KEY,
        host_id text NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz
      );

      CREATE TABLE fleet.lcs (
        host_id text NOT NULL REFERENCES fleet.hosts(id) ON DELETE CASCADE,
        lc text NOT NULL,
        group_name text NOT NULL DEFAULT 'default',
        labels jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (host_id, lc)
      );

      CREATE TABLE fleet.patches (
        name text PRIMARY KEY,
        security boolean NOT NULL,
        first_seen timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE fleet.rollouts (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        spec jsonb NOT NULL,
        patch_set jsonb NOT NULL,
        waves jsonb NOT NULL,
        state text NOT NULL CHECK (state IN ('running','paused','stopped','halted','completed')),
        reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE fleet.work (
        id bigserial PRIMARY KEY,
        rollout_id bigint NOT NULL REFERENCES fleet.rollouts(id),
        wave integer NOT NULL,
        host_id text NOT NULL REFERENCES fleet.hosts(id),
        lc text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('patch','rollback')),
        patches jsonb NOT NULL,
        state text NOT NULL DEFAULT 'queued'
          CHECK (state IN ('queued','claimed','running','succeeded','failed','reverted','cancelled')),
        created_at timestamptz NOT NULL DEFAULT now(),
        claimed_at timestamptz,
        started_at timestamptz,
        finished_at timestamptz,
        result jsonb,
        UNIQUE (rollout_id, host_id, lc, kind)
      );
      CREATE INDEX work_host_queued ON fleet.work (host_id, id) WHERE state = 'queued';
      CREATE INDEX work_rollout ON fleet.work (rollout_id, wave);

      CREATE TABLE fleet.reports (
        id bigserial PRIMARY KEY,
        host_id text NOT NULL REFERENCES fleet.hosts(id),
        work_id bigint REFERENCES fleet.work(id),
        kind text NOT NULL CHECK (kind IN ('event','health')),
        body jsonb NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX reports_host ON fleet.reports (host_id, at);

      -- What an agent last reported of each LC: services, installed and pending packages.
      CREATE TABLE fleet.inventory (
        host_id text NOT NULL REFERENCES fleet.hosts(id),
        lc text NOT NULL,
        body jsonb NOT NULL,
        reported_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (host_id, lc)
      );

      CREATE TABLE fleet.audit (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        action text NOT NULL,
        outcome text NOT NULL CHECK (outcome IN ('allowed','refused')),
        detail jsonb NOT NULL DEFAULT '{}'
      );
      CREATE TABLE fleet.audit_cursor (log_file text PRIMARY KEY, offset_bytes bigint NOT NULL);

      -- The host of the role that is logged in (NULL for every other role).
      CREATE FUNCTION fleet.my_host() RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = fleet, pg_temp
        AS $f$ SELECT id FROM fleet.hosts WHERE role_name = session_user AND revoked_at IS NULL $f$;
      REVOKE ALL ON FUNCTION fleet.my_host() FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION fleet.my_host() TO ${agentGroupRole};

      ALTER TABLE fleet.work ENABLE ROW LEVEL SECURITY;
      ALTER TABLE fleet.reports ENABLE ROW LEVEL SECURITY;
      ALTER TABLE fleet.inventory ENABLE ROW LEVEL SECURITY;
      ALTER TABLE fleet.hosts ENABLE ROW LEVEL SECURITY;
      CREATE POLICY own_host ON fleet.hosts TO ${agentGroupRole} USING (id = fleet.my_host());
      CREATE POLICY own_work ON fleet.work TO ${agentGroupRole}
        USING (host_id = fleet.my_host()) WITH CHECK (host_id = fleet.my_host());
      CREATE POLICY own_reports ON fleet.reports TO ${agentGroupRole}
        USING (host_id = fleet.my_host()) WITH CHECK (host_id = fleet.my_host());
      CREATE POLICY own_inventory ON fleet.inventory TO ${agentGroupRole}
        USING (host_id = fleet.my_host()) WITH CHECK (host_id = fleet.my_host());

      GRANT SELECT ON fleet.hosts TO ${agentGroupRole};
      GRANT UPDATE (last_seen) ON fleet.hosts TO ${agentGroupRole};
      GRANT SELECT ON fleet.work TO ${agentGroupRole};
      GRANT UPDATE (state, claimed_at, started_at, finished_at, result) ON fleet.work TO ${agentGroupRole};
      GRANT SELECT, INSERT ON fleet.reports TO ${agentGroupRole};
      GRANT USAGE ON SEQUENCE fleet.reports_id_seq TO ${agentGroupRole};
      GRANT SELECT, INSERT, UPDATE ON fleet.inventory TO ${agentGroupRole};

      -- Work moves forward only: queued → claimed → running → final, never out of a final state,
      -- so a restarted agent or a replayed request cannot run the same work twice.
      CREATE FUNCTION fleet.work_forward_only() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN
        IF OLD.state IN ('succeeded','failed','reverted','cancelled') AND NEW.state <> OLD.state THEN
          RAISE EXCEPTION 'work % is % and cannot become %', OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.state <> 'queued' AND NEW.state = 'queued' THEN
          RAISE EXCEPTION 'work % was taken and cannot be queued again', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.state = 'queued' AND NEW.state IN ('running','succeeded','failed','reverted') THEN
          RAISE EXCEPTION 'work % must be claimed before it runs', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $f$;
      CREATE TRIGGER work_forward_only BEFORE UPDATE OF state ON fleet.work
        FOR EACH ROW EXECUTE FUNCTION fleet.work_forward_only();

      -- An agent asks for work only through this: it names its host, and asking for another host's
      -- work is refused here (and logged by the server) besides being invisible through RLS.
      CREATE FUNCTION fleet.claim_work(p_host text, p_limit integer) RETURNS SETOF fleet.work
        LANGUAGE plpgsql SECURITY INVOKER AS $f$
      BEGIN
        IF p_host IS DISTINCT FROM fleet.my_host() THEN
          RAISE EXCEPTION 'FLEET_FORBIDDEN: role % may not take work of host %', session_user, p_host
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        UPDATE fleet.hosts SET last_seen = now() WHERE id = p_host;
        RETURN QUERY
          UPDATE fleet.work w SET state = 'claimed', claimed_at = now()
          WHERE w.id IN (
            SELECT id FROM fleet.work
            WHERE host_id = p_host AND state = 'queued'
            ORDER BY id LIMIT p_limit FOR UPDATE SKIP LOCKED)
          RETURNING w.*;
      END $f$;
      REVOKE ALL ON FUNCTION fleet.claim_work(text, integer) FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION fleet.claim_work(text, integer) TO ${agentGroupRole};
    `,
  },
  {
    version: 2,
    name: 'a switched LC may be reverted after its run succeeded',
    sql: `
      CREATE OR REPLACE FUNCTION fleet.work_forward_only() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN
        IF OLD.state = 'succeeded' AND NEW.state = 'reverted' THEN
          RETURN NEW;
        END IF;
        IF OLD.state IN ('succeeded','failed','reverted','cancelled') AND NEW.state <> OLD.state THEN
          RAISE EXCEPTION 'work % is % and cannot become %', OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.state <> 'queued' AND NEW.state = 'queued' THEN
          RAISE EXCEPTION 'work % was taken and cannot be queued again', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.state = 'queued' AND NEW.state IN ('running','succeeded','failed','reverted') THEN
          RAISE EXCEPTION 'work % must be claimed before it runs', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $f$;
    `,
  },
  {
    version: 3,
    name: 'health reports by work item',
    sql: `CREATE INDEX reports_work_health ON fleet.reports (work_id) WHERE kind = 'health';`,
  },
  {
    version: 4,
    name: 'rollouts awaiting a mail approval, their challenges and the replies read',
    sql: `
      ALTER TABLE fleet.rollouts DROP CONSTRAINT rollouts_state_check;
      ALTER TABLE fleet.rollouts ADD CONSTRAINT rollouts_state_check
        CHECK (state IN ('awaiting-approval','running','paused','stopped','halted','completed'));

      -- One challenge per administrator and rollout, bound to the rollout's frozen patch set.
      -- open: waiting; used: a decision was accepted (or another administrator's was); locked: too
      -- many wrong codes.
      CREATE TABLE fleet.rollout_challenges (
        challenge text PRIMARY KEY CHECK (challenge ~ '^[0-9a-f]{40}$'),
        rollout_id bigint NOT NULL REFERENCES fleet.rollouts(id),
        admin text NOT NULL,
        patch_set jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        state text NOT NULL DEFAULT 'open' CHECK (state IN ('open','used','locked')),
        failed_attempts integer NOT NULL DEFAULT 0,
        used_at timestamptz,
        decision text,
        UNIQUE (rollout_id, admin)
      );

      -- Replies already read (by Message-ID, else IMAP uid): a message is judged once.
      CREATE TABLE fleet.approval_replies (
        message_key text PRIMARY KEY,
        processed_at timestamptz NOT NULL DEFAULT now(),
        outcome text NOT NULL CHECK (outcome IN ('accepted','refused')),
        reason text
      );
    `,
  },
  {
    version: 5,
    name: 'approval challenges reissued (replaced), mailed apart from being made; audit by rollout',
    sql: `
      -- replaced: a newer challenge was issued to the same administrator for the same rollout
      -- (the old mail expired or was lost); its code is refused from then on.
      ALTER TABLE fleet.rollout_challenges DROP CONSTRAINT rollout_challenges_state_check;
      ALTER TABLE fleet.rollout_challenges ADD CONSTRAINT rollout_challenges_state_check
        CHECK (state IN ('open','used','locked','replaced'));
      -- At most one open challenge per administrator and rollout; earlier ones stay, replaced.
      ALTER TABLE fleet.rollout_challenges DROP CONSTRAINT rollout_challenges_rollout_id_admin_key;
      CREATE UNIQUE INDEX rollout_challenges_open ON fleet.rollout_challenges (rollout_id, admin)
        WHERE state = 'open';
      -- When the challenge's mail was sent; NULL: still to be mailed (made by a reissue, or the
      -- send failed and is retried).
      ALTER TABLE fleet.rollout_challenges ADD COLUMN mailed_at timestamptz;
      UPDATE fleet.rollout_challenges SET mailed_at = created_at;

      -- A rollout's record: every operator action and approval on it, from the audit.
      CREATE INDEX audit_rollout ON fleet.audit ((detail->>'rolloutId')) WHERE detail ? 'rolloutId';
    `,
  },
];

/** Applies the migrations not applied yet; returns the versions applied now. */
export async function migrate(client: pg.ClientBase): Promise<number[]> {
  await client.query('SELECT pg_advisory_lock(hashtext($1))', ['understudy-fleet-migrate']);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS fleet`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS fleet.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM fleet.migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO fleet.migrations (version, name) VALUES ($1, $2)', [
          m.version,
          m.name,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['understudy-fleet-migrate']);
  }
}
