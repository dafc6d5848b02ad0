-- Baseline profiles are merged by the fleet (docs/baseline.md, "In
-- outguard"): each node adds what it counted since its last round to the
-- shared profile under the row's lock, instead of writing its whole copy.
-- The rows keep their encoding; the new schema version keeps binaries that
-- still write whole profiles (and would overwrite the other nodes' counts)
-- from starting on a database whose nodes merge.
COMMENT ON TABLE detection_profiles IS
	'One baseline profile per identity (package baseline encoding), merged by every node from its deltas under the row lock; node and updated_at name the last node to merge.';
COMMENT ON COLUMN detection_profiles.node IS 'the node that merged last';
