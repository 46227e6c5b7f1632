-- The feedback service's store. Individual answers (feedback_answers, answer_skills) are
-- read only by their author; admins read the report tables, through k-anonymity checks.

CREATE TABLE programs (
    program_id         text             PRIMARY KEY,
    revision           integer          NOT NULL,
    starts_on          date             NOT NULL,
    duration_weeks     integer          NOT NULL,
    milestone_weeks    integer[],                      -- NULL: derived from duration_weeks
    k_anonymity        integer          NOT NULL,
    after_each_session boolean          NOT NULL,
    response_days      integer          NOT NULL,
    at_risk_threshold  double precision NOT NULL,
    topics             text[]           NOT NULL,
    admin_ids          text[]           NOT NULL,
    closed_at          timestamptz
);

CREATE TABLE pairs (
    pair_id        text             PRIMARY KEY,
    program_id     text             NOT NULL,
    mentor_id      text             NOT NULL,
    mentee_id      text             NOT NULL,
    formed_at      timestamptz      NOT NULL,
    ended_at       timestamptz,
    end_reason     text,
    health_band    text             NOT NULL DEFAULT 'healthy',
    health_score   double precision NOT NULL DEFAULT 1,
    health_signals text[]           NOT NULL DEFAULT '{}'
);
CREATE INDEX pairs_by_program ON pairs (program_id);
CREATE INDEX open_pairs ON pairs (pair_id) WHERE ended_at IS NULL;

-- Attendance arrives on upward.sessions, possibly before PairFormed: keyed by pair alone.
CREATE TABLE pair_attendance (
    pair_id            text    PRIMARY KEY,
    consecutive_missed integer NOT NULL DEFAULT 0,
    stalled            boolean NOT NULL DEFAULT false
);

CREATE TABLE held_sessions (
    pair_id    text        NOT NULL,
    session_id text        NOT NULL,
    program_id text        NOT NULL,
    held_at    timestamptz NOT NULL,
    PRIMARY KEY (pair_id, session_id)
);

CREATE TABLE feedback_requests (
    request_id     text        PRIMARY KEY,  -- derived from pair, subject and side
    pair_id        text        NOT NULL,
    program_id     text        NOT NULL,
    participant_id text        NOT NULL,
    side           text        NOT NULL,
    kind           text        NOT NULL,
    session_id     text,
    milestone_week integer,
    requested_at   timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    status         text        NOT NULL DEFAULT 'open',  -- open, submitted, missing
    late           boolean     NOT NULL DEFAULT false
);
CREATE INDEX requests_by_participant ON feedback_requests (participant_id, requested_at);
CREATE INDEX requests_by_pair ON feedback_requests (pair_id, requested_at);
CREATE INDEX requests_by_program ON feedback_requests (program_id);
CREATE INDEX open_requests_by_due ON feedback_requests (due_at) WHERE status = 'open';

CREATE TABLE feedback_answers (
    request_id   text        PRIMARY KEY REFERENCES feedback_requests,  -- one answer per request
    satisfaction smallint    NOT NULL,
    usefulness   smallint    NOT NULL,
    comfort      smallint    NOT NULL,
    progress     smallint    NOT NULL,
    nps          smallint,
    comment      text,
    submitted_at timestamptz NOT NULL,
    late         boolean     NOT NULL
);

CREATE TABLE answer_skills (
    request_id text     NOT NULL REFERENCES feedback_answers,
    topic      text     NOT NULL,
    before     smallint NOT NULL,
    after      smallint NOT NULL,
    PRIMARY KEY (request_id, topic)
);

-- Report table: additive totals per program, side, kind and person, split into what
-- admins' figures include ('released') and what waits for k people ('pending').
CREATE TABLE rating_contributions (
    program_id   text    NOT NULL,
    side         text    NOT NULL,
    kind         text    NOT NULL,
    person_id    text    NOT NULL,
    stage        text    NOT NULL CHECK (stage IN ('released', 'pending')),
    responses    integer NOT NULL,
    satisfaction integer NOT NULL,
    usefulness   integer NOT NULL,
    comfort      integer NOT NULL,
    progress     integer NOT NULL,
    nps_answers  integer NOT NULL,
    promoters    integer NOT NULL,
    detractors   integer NOT NULL,
    PRIMARY KEY (program_id, side, kind, person_id, stage)
);

-- Report table: a mentee's first 'before' and latest 'after' per topic, and the values
-- admins' figures include (released_*), moved forward k mentees at a time.
CREATE TABLE skill_progress (
    program_id      text     NOT NULL,
    topic           text     NOT NULL,
    mentee_id       text     NOT NULL,
    first_before    smallint NOT NULL,
    latest_after    smallint NOT NULL,
    released_before smallint,
    released_after  smallint,
    pending         boolean  NOT NULL,
    PRIMARY KEY (program_id, topic, mentee_id)
);

CREATE TABLE outcome_releases (
    program_id  text        PRIMARY KEY,
    released_at timestamptz NOT NULL,
    releases    integer     NOT NULL
);
