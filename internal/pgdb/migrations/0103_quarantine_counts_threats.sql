-- Reports of spam, phishing or viruses read only the counters of keys that
-- sent some (a few in a hundred): a partial index on them. Counters
-- updated without a threat keep their in-place (HOT) updates, as the
-- indexed columns do not change.
CREATE INDEX quarantine_counts_threats ON quarantine_counts (grp, gran, bucket)
	WHERE n_spam + n_phishing + n_virus > 0;
