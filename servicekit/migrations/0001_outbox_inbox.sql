-- Transactional outbox: events written in the same transaction as the state change.
CREATE TABLE kit_outbox (
    seq          bigserial   PRIMARY KEY,
    event_id     text        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    event_key    text        NOT NULL,
    event_type   text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX kit_outbox_unpublished ON kit_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX kit_outbox_published_at ON kit_outbox (published_at) WHERE published_at IS NOT NULL;

-- Inbox: the ids of the events a consumer group has processed, written in the
-- same transaction as the handler's state change.
CREATE TABLE kit_inbox (
    consumer_group text        NOT NULL,
    event_id       text        NOT NULL,
    event_type     text        NOT NULL,
    topic          text        NOT NULL,
    kafka_partition integer    NOT NULL,
    kafka_offset   bigint      NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    redeliveries   integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer_group, event_id)
);
