CREATE TABLE welcomes (
    participant_id text        PRIMARY KEY,
    program_id     text        NOT NULL,
    display_name   text        NOT NULL,
    applied        integer     NOT NULL,  -- how many times the effect ran: must stay 1
    welcomed_at    timestamptz NOT NULL DEFAULT now()
);
