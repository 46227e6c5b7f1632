-- The sessions service's own store: projections of programs and participants,
-- pairs, their sessions, and the pairs' private notes.

CREATE TABLE programs (
    program_id               text        PRIMARY KEY,
    name                     text        NOT NULL,
    cadence_days             integer     NOT NULL,
    duration_weeks           integer     NOT NULL,
    session_minutes          integer     NOT NULL,
    max_missed_sessions      integer     NOT NULL,
    max_days_without_session integer     NOT NULL,
    catalogue                jsonb       NOT NULL,  -- [{"key", "title", "difficulty"}]
    revision                 integer     NOT NULL,
    closed                   boolean     NOT NULL DEFAULT false
);

-- Personal data: erased on ParticipantForgotten.
CREATE TABLE participants (
    participant_id text  PRIMARY KEY,
    display_name   text  NOT NULL,
    email          text  NOT NULL,
    timezone       text  NOT NULL,
    working_hours  jsonb            -- {"start": "09:00", "end": "17:00", "weekdays": [0..6]}
);

CREATE TABLE participant_wants (
    participant_id text    NOT NULL,
    program_id     text    NOT NULL,
    wants          jsonb   NOT NULL,  -- {"topic": priority}
    PRIMARY KEY (participant_id, program_id)
);

CREATE TABLE forgotten_participants (
    participant_id text        PRIMARY KEY,
    forgotten_at   timestamptz NOT NULL
);

CREATE TABLE pairs (
    pair_id            text        PRIMARY KEY,
    program_id         text        NOT NULL,
    mentor_id          text        NOT NULL,
    mentee_id          text        NOT NULL,
    topics             text[]      NOT NULL,
    formed_at          timestamptz NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending', 'active', 'ended')),
    first_due          timestamptz,
    ends_at            timestamptz,
    consecutive_missed integer     NOT NULL DEFAULT 0,
    last_held_at       timestamptz,
    stalled            boolean     NOT NULL DEFAULT false,
    end_reason         text
);
CREATE INDEX pairs_program ON pairs (program_id, status);
CREATE INDEX pairs_mentor ON pairs (mentor_id);
CREATE INDEX pairs_mentee ON pairs (mentee_id);
CREATE INDEX pairs_active_ends ON pairs (ends_at) WHERE status = 'active';

CREATE TABLE sessions (
    session_id       text        PRIMARY KEY,
    pair_id          text        NOT NULL REFERENCES pairs (pair_id),
    program_id       text        NOT NULL,
    number           integer     NOT NULL,
    due_at           timestamptz NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL CHECK (ends_at > starts_at),
    agenda           text[]      NOT NULL,
    warnings         text[]      NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('scheduled', 'held', 'missed', 'cancelled')),
    ical_sequence    integer     NOT NULL,
    attendees        text[]      NOT NULL,
    absent           text[]      NOT NULL,
    duration_minutes integer,
    topics_covered   text[]      NOT NULL,
    cancel_reason    text,
    updated_at       timestamptz,
    UNIQUE (pair_id, number)
);
CREATE INDEX sessions_scheduled_ends ON sessions (ends_at) WHERE status = 'scheduled';
CREATE INDEX sessions_starts ON sessions (starts_at);

-- What is said in the pair stays in the pair: never in an event, read only by the pair.
CREATE TABLE session_notes (
    note_id    bigserial   PRIMARY KEY,
    session_id text        NOT NULL REFERENCES sessions (session_id),
    pair_id    text        NOT NULL,
    author_id  text        NOT NULL,
    body       text        NOT NULL,
    written_at timestamptz NOT NULL
);
CREATE INDEX session_notes_session ON session_notes (session_id);
CREATE INDEX session_notes_author ON session_notes (author_id);
