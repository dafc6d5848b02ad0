-- Reports over every domain read the counters of one grouping in a few
-- periods: an index holding the counters themselves answers them from the
-- index alone (an index-only scan, in key order), instead of one heap page
-- per counted key. It replaces the index on (grp, gran, bucket).
CREATE INDEX quarantine_counts_report ON quarantine_counts (grp, gran, bucket)
	INCLUDE (domain, key, n_all, n_accepted, n_rejected, n_other, n_clean, n_spam, n_phishing, n_virus);
DROP INDEX quarantine_counts_period;
ANALYZE quarantine_counts;
