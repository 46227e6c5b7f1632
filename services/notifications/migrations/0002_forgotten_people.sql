-- Erasure (ParticipantForgotten): only the id of a forgotten person stays, so that a late
-- event (a session cancelled because their pair ended, a profile update still in flight)
-- plans no message to them and brings back no contact. Nothing else about them is kept.
CREATE TABLE forgotten_people (
    person_id    text        PRIMARY KEY,
    forgotten_at timestamptz NOT NULL
);
