-- Written from cluster.md §8.2/§8.12 (not by neoppod): a SQLite storage
-- database in format version 2 (pt(rid, nid, state)), for TestUpgrade.
CREATE TABLE config (
		name TEXT NOT NULL PRIMARY KEY,
		value TEXT) WITHOUT ROWID;
INSERT INTO config VALUES ('name', 'test');
INSERT INTO config VALUES ('nid', '1');
INSERT INTO config VALUES ('ptid', '5');
INSERT INTO config VALUES ('replicas', '1');
INSERT INTO config VALUES ('partitions', '2');
INSERT INTO config VALUES ('version', '2');
-- Cell states in the enumeration of the time: UP_TO_DATE 0, OUT_OF_DATE 1,
-- FEEDING 2, DISCARDED 3, CORRUPTED 4.
CREATE TABLE pt (
		rid INTEGER NOT NULL,
		nid INTEGER NOT NULL,
		state INTEGER NOT NULL,
		PRIMARY KEY (rid, nid)) WITHOUT ROWID;
INSERT INTO pt VALUES (0, 1, 0);
INSERT INTO pt VALUES (0, 2, 2);
INSERT INTO pt VALUES (1, 1, 1);
INSERT INTO pt VALUES (1, 2, 4);
CREATE TABLE trans (
		partition INTEGER NOT NULL,
		tid INTEGER NOT NULL,
		packed BOOLEAN NOT NULL,
		oids BLOB NOT NULL,
		user BLOB NOT NULL,
		description BLOB NOT NULL,
		ext BLOB NOT NULL,
		ttid INTEGER NOT NULL,
		PRIMARY KEY (partition, tid)) WITHOUT ROWID;
INSERT INTO trans VALUES (0, 1000, 0, X'00000000000000000000000000000001', X'75736572', X'6669727374', X'', 999);
INSERT INTO trans VALUES (1, 1001, 0, X'0000000000000000', X'', X'756e646f', X'', 1001);
CREATE TABLE obj (
		partition INTEGER NOT NULL,
		oid INTEGER NOT NULL,
		tid INTEGER NOT NULL,
		data_id INTEGER,
		value_tid INTEGER,
		PRIMARY KEY (partition, oid, tid)) WITHOUT ROWID;
CREATE INDEX _obj_i1 ON obj(partition, tid, oid);
CREATE INDEX _obj_i2 ON obj(data_id);
INSERT INTO obj VALUES (0, 0, 1000, 0, NULL);
INSERT INTO obj VALUES (1, 1, 1000, 281474976710656, NULL);
INSERT INTO obj VALUES (0, 0, 1001, NULL, 1000);
CREATE TABLE data (
		id INTEGER PRIMARY KEY,
		hash BLOB NOT NULL,
		compression INTEGER NOT NULL,
		value BLOB NOT NULL);
INSERT INTO data VALUES (0, X'1c1b0a2b5e4e7d6c8f4d3b3a2a1a0a9a8a7a6a5a', 0, X'6f626a656374207a65726f');
INSERT INTO data VALUES (281474976710656, X'2c2b0a2b5e4e7d6c8f4d3b3a2a1a0a9a8a7a6a5a', 1, X'789c4b2d4a0400029f0137');
CREATE TABLE ttrans (
		partition INTEGER NOT NULL,
		tid INTEGER,
		packed BOOLEAN NOT NULL,
		oids BLOB NOT NULL,
		user BLOB NOT NULL,
		description BLOB NOT NULL,
		ext BLOB NOT NULL,
		ttid INTEGER NOT NULL);
CREATE TABLE tobj (
		partition INTEGER NOT NULL,
		oid INTEGER NOT NULL,
		tid INTEGER NOT NULL,
		data_id INTEGER,
		value_tid INTEGER,
		PRIMARY KEY (tid, oid)) WITHOUT ROWID;
