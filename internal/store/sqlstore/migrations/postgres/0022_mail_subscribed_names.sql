-- Subscriptions outlive their mailboxes (RFC 9051 §6.3.7: a server does not
-- remove a name from the subscription list because its mailbox is gone):
-- a mailbox's own subscription is its subscribed column; when a subscribed
-- mailbox is deleted its name moves here, LIST (SUBSCRIBED) shows it as
-- \NonExistent (RFC 5258), and a mailbox created under the name again takes
-- the subscription back.
CREATE TABLE mail_subscribed_names (
	member_id BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	PRIMARY KEY (member_id, name)
);
