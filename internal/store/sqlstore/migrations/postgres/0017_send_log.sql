-- What each member sent over SMTP submission, one row per accepted message,
-- for the sliding hour and day of the sending caps (account.SendLimits):
-- written in the submission's delivery transaction, counted at MAIL FROM,
-- pruned after two days (the longest window is one). app_password_id is the
-- app password the message was sent with, '' for the main password; it is
-- no reference, so that what a deleted app password sent still counts
-- under its member's caps. created_at is in µs since the epoch.
CREATE TABLE send_log (
	id              BIGSERIAL PRIMARY KEY,
	member_id       BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	app_password_id TEXT NOT NULL DEFAULT '',
	recipients      INTEGER NOT NULL,
	created_at      BIGINT NOT NULL
);
-- The windows of one member (SendCounts, SentByAppPassword) and the pruning.
CREATE INDEX send_log_member ON send_log(member_id, created_at);
CREATE INDEX send_log_created ON send_log(created_at);

-- When a member was last told that a login reached a sending cap, per app
-- password ('' for the main password): at most one message a day each,
-- however long a script keeps hitting the cap.
CREATE TABLE send_limit_notices (
	member_id       BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	app_password_id TEXT NOT NULL,
	notified_at     BIGINT NOT NULL,
	PRIMARY KEY (member_id, app_password_id)
);
