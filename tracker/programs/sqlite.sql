-- sqlite.sql - the sqlite3 program `make traces` records: an in-memory
-- table built and indexed, then queried (about a second).
CREATE TABLE item(id INTEGER PRIMARY KEY, owner INTEGER, name TEXT, price REAL, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
INSERT INTO item SELECT i, i % 997, 'name-' || (i * 7919 % 100003), (i % 1000) / 7.0,
       substr(hex(randomblob(40)), 1, 20 + i % 60) FROM n;
CREATE INDEX item_owner ON item(owner, price);
CREATE INDEX item_name ON item(name);
SELECT owner, count(*), round(avg(price), 3) FROM item GROUP BY owner ORDER BY 2 DESC LIMIT 3;
SELECT count(*) FROM item WHERE name LIKE 'name-12%';
SELECT count(*) FROM item a JOIN item b ON a.owner = b.owner AND a.id + 997 = b.id WHERE a.price > 100;
UPDATE item SET note = note || '-x' WHERE owner < 200;
DELETE FROM item WHERE id % 3 = 0;
SELECT count(*), sum(length(note)) FROM item;
