-- The notifications service's store: its contact directory, preferences, the projections
-- of programs, pairs and sessions it needs to address messages, and the deliveries.

CREATE TABLE contacts (
    person_id    text        PRIMARY KEY,
    display_name text        NOT NULL,
    email        text        NOT NULL,
    timezone     text        NOT NULL,
    languages    text[]      NOT NULL,
    source       text        NOT NULL CHECK (source IN ('participant', 'directory')),
    updated_at   timestamptz NOT NULL
);

CREATE TABLE preferences (
    person_id   text        PRIMARY KEY,
    preferences jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE programs (
    program_id               text    PRIMARY KEY,
    name                     text    NOT NULL,
    admin_ids                text[]  NOT NULL,
    reminder_offsets_minutes integer[] NOT NULL,
    topic_titles             jsonb   NOT NULL
);

CREATE TABLE sessions (
    session_id text        PRIMARY KEY,
    pair_id    text        NOT NULL,
    program_id text        NOT NULL,
    mentor_id  text        NOT NULL,
    mentee_id  text        NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL
);

CREATE TABLE answered_feedback_requests (
    request_id text PRIMARY KEY
);

-- One row per (source key, recipient, channel): the natural key of a message. Handlers
-- insert with ON CONFLICT DO NOTHING, so a redelivered or replayed event plans nothing new.
CREATE TABLE deliveries (
    delivery_id     text        PRIMARY KEY,
    source_key      text        NOT NULL,
    recipient_id    text        NOT NULL,
    partner_id      text,       -- the other person the message names (erased with them)
    channel         text        NOT NULL,
    kind            text        NOT NULL,
    reference_id    text,
    context         jsonb       NOT NULL,
    calendar_ics    text,
    calendar_method text,
    cancel_key      text,
    digest          boolean     NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    due_at          timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    lease_until     timestamptz,
    claim_token     text,       -- the worker claim that holds the lease while sending
    message_id      text,
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL,
    UNIQUE (source_key, recipient_id, channel)
);

CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status IN ('pending', 'sending');
CREATE INDEX deliveries_cancel_key ON deliveries (cancel_key) WHERE status = 'pending';
CREATE INDEX deliveries_recipient_sent ON deliveries (recipient_id, sent_at) WHERE status = 'sent';
