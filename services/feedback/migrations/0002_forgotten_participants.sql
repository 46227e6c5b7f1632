-- Erasure (ParticipantForgotten): the person's comments are erased and their id is replaced,
-- everywhere, by one random pseudonym that is not kept, so the report tables still count
-- them once and the released figures do not move. Only the fact that the id was forgotten
-- stays, so that a PairFormed still in flight cannot bring the id back.
CREATE TABLE forgotten_participants (
    participant_id text        PRIMARY KEY,
    forgotten_at   timestamptz NOT NULL
);
