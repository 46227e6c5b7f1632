-- A pair's scheduled sessions by start: the calendar check when a session is planned
-- (busy) reads the two people's pairs, then these, instead of every scheduled session.
CREATE INDEX sessions_pair_scheduled ON sessions (pair_id, starts_at) WHERE status = 'scheduled';
