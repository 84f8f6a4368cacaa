-- An app password's last use is updated once a minute while it is in use:
-- at 100,000 members, about one UPDATE per login (docs/benchmarks.md, the
-- scale figure). With full pages a quarter of them could not be HOT (a new
-- row version on the same page, no index touched) and wrote an entry into
-- each index. Room on every page keeps them HOT; it applies to pages filled
-- from now on. app_passwords_member is redundant: the unique
-- (member_id, name_key) index starts with member_id and serves those lookups.
ALTER TABLE app_passwords SET (fillfactor = 80);
DROP INDEX IF EXISTS app_passwords_member;
