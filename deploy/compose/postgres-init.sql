-- One database per service (docker-compose stack; the entrypoint runs this on first start).
CREATE DATABASE upward_matching;
CREATE DATABASE upward_sessions;
CREATE DATABASE upward_feedback;
CREATE DATABASE upward_notifications;
