-- The matching service's store: programs it owns, the participant projection it
-- plans from, pairs (proposals and formed pairs), admin vetoes, match runs and the
-- audit trail of admin actions.

CREATE TABLE programs (
    program_id        text        PRIMARY KEY,
    definition        jsonb       NOT NULL,            -- ProgramDefinition, as last emitted
    revision          integer     NOT NULL,            -- 1 when created, +1 per update
    status            text        NOT NULL CHECK (status IN ('open', 'closed')),
    pairing_modes     text[]      NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    closed_at         timestamptz
);

-- One row per change that could let the continuous mode propose something new in a
-- program (a joiner, an update, a freed place). The continuous timer plans the programs
-- that have rows and then deletes the rows it saw: insert-only, so concurrent consumers
-- never contend on a hot counter, and a change committed during a plan survives it.
CREATE TABLE pool_changes (
    change_id   bigserial   PRIMARY KEY,
    program_id  text        NOT NULL
);
CREATE INDEX pool_changes_by_program ON pool_changes (program_id, change_id);

CREATE TABLE participants (
    program_id      text        NOT NULL REFERENCES programs (program_id),
    participant_id  text        NOT NULL,
    profile         jsonb       NOT NULL,              -- ParticipantProfile, as last received
    status          text        NOT NULL CHECK (status IN ('active', 'left')),
    screening       text        CHECK (screening IN ('passed', 'failed')),
    trained         boolean     NOT NULL DEFAULT false,
    joined_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (program_id, participant_id)
);
CREATE INDEX participants_by_person ON participants (participant_id);

CREATE TABLE pairs (
    pair_id            text        PRIMARY KEY,
    program_id         text        NOT NULL REFERENCES programs (program_id),
    mentor_id          text        NOT NULL,
    mentee_id          text        NOT NULL,
    status             text        NOT NULL
                       CHECK (status IN ('proposed', 'formed', 'declined', 'ended')),
    mode               text        NOT NULL,
    score              double precision NOT NULL,
    explanation        jsonb       NOT NULL,
    topics             text[]      NOT NULL,
    run_id             text,
    proposed_by        text,
    proposed_at        timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    mentor_accepted_at timestamptz,
    mentee_accepted_at timestamptz,
    formed_at          timestamptz,
    closed_at          timestamptz,
    close_reason       text,
    closed_by          text,
    at_risk_at         timestamptz,
    -- A combination is proposed at most once, ever: a declined or ended pair is never
    -- proposed again, and a replayed command cannot create a second pair.
    UNIQUE (program_id, mentor_id, mentee_id)
);
-- One open pair (proposed or formed) per mentee.
CREATE UNIQUE INDEX pairs_one_open_per_mentee ON pairs (program_id, mentee_id)
    WHERE status IN ('proposed', 'formed');
CREATE INDEX pairs_open_by_mentor ON pairs (program_id, mentor_id)
    WHERE status IN ('proposed', 'formed');
CREATE INDEX pairs_expiring ON pairs (expires_at) WHERE status = 'proposed';
CREATE INDEX pairs_by_mentor ON pairs (mentor_id);
CREATE INDEX pairs_by_mentee ON pairs (mentee_id);

CREATE TABLE vetoes (
    program_id  text        NOT NULL REFERENCES programs (program_id),
    mentor_id   text        NOT NULL,
    mentee_id   text        NOT NULL,
    vetoed_by   text        NOT NULL,
    reason      text        NOT NULL,
    vetoed_at   timestamptz NOT NULL,
    PRIMARY KEY (program_id, mentor_id, mentee_id)
);

CREATE TABLE match_runs (
    run_id        text        PRIMARY KEY,
    program_id    text        NOT NULL REFERENCES programs (program_id),
    mode          text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('staged', 'published', 'discarded')),
    plan          jsonb       NOT NULL,                -- planned pairs, unmatched, totals
    created_by    text,
    created_at    timestamptz NOT NULL,
    duration_ms   integer     NOT NULL,
    published_at  timestamptz,
    published_by  text,
    outcome       jsonb                                -- what publishing kept and dropped
);
CREATE INDEX match_runs_by_program ON match_runs (program_id, created_at);

-- Who did what and why: manual pairs, vetoes, runs published, pairs ended, programs closed.
CREATE TABLE admin_actions (
    action_id   bigserial   PRIMARY KEY,
    program_id  text        NOT NULL,
    action      text        NOT NULL,
    actor_id    text        NOT NULL,
    reason      text,
    pair_id     text,
    run_id      text,
    mentor_id   text,
    mentee_id   text,
    at          timestamptz NOT NULL
);
CREATE INDEX admin_actions_by_program ON admin_actions (program_id, action_id);
