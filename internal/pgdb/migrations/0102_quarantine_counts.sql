-- Report counters in one row per counted thing (package quarantine,
-- docs/config-store.md): quarantine_rollup kept one row per
-- classification, so a 30-day report over millions of records summed
-- millions of rows. Here a row holds the counters of one grouping key in
-- one period, one column per classification, and whole weeks are counted
-- as well as hours and days, so that a long report reads about one row per
-- key and week. The administrative domain stays first in the key.
--
-- grp is 0 for the totals, else the grouping's letter (d, i, u, s); gran
-- is 104 ('h') for the hourly totals and domains, 107 ('k') for the
-- hourly identities, users and senders, 100 ('d') for UTC days and 119
-- ('w') for weeks from Monday 00:00 UTC; bucket is the hour or day number
-- since the epoch (for a week, the day number of its Monday); key is ""
-- for the totals and domains. The identities', users' and senders' rows
-- count only the status classes (accepted, rejected, other) and the
-- threat classes; n_all is the sum of the status classes for them.
CREATE TABLE quarantine_counts (
	domain     text NOT NULL,
	grp        smallint NOT NULL,
	gran       smallint NOT NULL,
	bucket     integer NOT NULL,
	key        text NOT NULL,
	n_all      bigint NOT NULL DEFAULT 0,
	n_accepted bigint NOT NULL DEFAULT 0,
	n_rejected bigint NOT NULL DEFAULT 0,
	n_other    bigint NOT NULL DEFAULT 0, -- deferred and failed
	n_clean    bigint NOT NULL DEFAULT 0,
	n_spam     bigint NOT NULL DEFAULT 0,
	n_phishing bigint NOT NULL DEFAULT 0,
	n_virus    bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (domain, grp, gran, bucket, key)
) WITH (fillfactor = 80); -- room for the in-place (HOT) updates of busy counters

-- Reports over every domain: the periods of one grouping.
CREATE INDEX quarantine_counts_period ON quarantine_counts (grp, gran, bucket);

INSERT INTO quarantine_counts (domain, grp, gran, bucket, key, n_all, n_accepted, n_rejected, n_other, n_clean, n_spam, n_phishing, n_virus)
SELECT domain, grp, gran, bucket, key,
	CASE WHEN grp IN (0, 100) THEN coalesce(sum(n) FILTER (WHERE class = 1), 0)
	     ELSE coalesce(sum(n) FILTER (WHERE class IN (2, 3, 100)), 0) END,
	coalesce(sum(n) FILTER (WHERE class = 2), 0),
	coalesce(sum(n) FILTER (WHERE class = 3), 0),
	coalesce(sum(n) FILTER (WHERE class = 100), 0),
	coalesce(sum(n) FILTER (WHERE class = 4), 0),
	coalesce(sum(n) FILTER (WHERE class = 5), 0),
	coalesce(sum(n) FILTER (WHERE class = 6), 0),
	coalesce(sum(n) FILTER (WHERE class = 7), 0)
FROM quarantine_rollup GROUP BY domain, grp, gran, bucket, key;

-- The weeks, from the days (a week's Monday: epoch day 0 was a Thursday).
INSERT INTO quarantine_counts (domain, grp, gran, bucket, key, n_all, n_accepted, n_rejected, n_other, n_clean, n_spam, n_phishing, n_virus)
SELECT domain, grp, 119, bucket - (bucket + 3) % 7, key,
	sum(n_all), sum(n_accepted), sum(n_rejected), sum(n_other), sum(n_clean), sum(n_spam), sum(n_phishing), sum(n_virus)
FROM quarantine_counts WHERE gran = 100 GROUP BY domain, grp, bucket - (bucket + 3) % 7, key;

DROP TABLE quarantine_rollup;
