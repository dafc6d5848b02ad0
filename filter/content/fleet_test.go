package content

import (
	"testing"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// TestFleetLessonsAddUp: two nodes' learners on one PostgreSQL database
// (a real server; skips visibly without one, see internal/pgdb/pgtest)
// each score with both nodes' lessons once they refresh, keep both after a
// restart, and a reset or an import on one node is the whole fleet's,
// even when the other node learnt meanwhile without having refreshed.
func TestFleetLessonsAddUp(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgtest.OpenPool(t, dsn, true)
	seed := NewModel([]uint32{1, 2, 3}, []float32{1, 1, 1}, 0, 3, 5, "")
	open := func(node string) *Learner {
		t.Helper()
		l, err := NewLearner(seed, LearnerOptions{Store: PgStore{Pool: pgtest.OpenPool(t, dsn, false), Node: node}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	refresh := func(ls ...*Learner) {
		t.Helper()
		for _, l := range ls {
			if err := l.Refresh(); err != nil {
				t.Fatal(err)
			}
		}
	}
	score := func(l *Learner, f Features) float64 {
		s, _ := l.Score(f)
		return s
	}
	a, b := open("node-a"), open("node-b")
	spam, ham := Features{1, 20, 21}, Features{2, 30, 31}
	seedSpam, seedHam := score(a, spam), score(a, ham)
	if _, _, err := a.Learn(spam, nil, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Learn(ham, nil, false); err != nil {
		t.Fatal(err)
	}
	refresh(a, b)
	for name, l := range map[string]*Learner{"a": a, "b": b} {
		if got := score(l, spam); got < float64(seed.Spam) {
			t.Errorf("node %s scores A's spam lesson %.2f, want at least %v", name, got, seed.Spam)
		}
		if got := score(l, ham); got >= float64(seed.Suspect) {
			t.Errorf("node %s scores B's ham lesson %.2f, want below %v", name, got, seed.Suspect)
		}
		if info := l.Info(); info.Learned != 2 {
			t.Errorf("node %s counts %d lessons, want 2", name, info.Learned)
		}
	}
	if a.Version() != b.Version() {
		t.Errorf("versions differ across the fleet: %s and %s", a.Version(), b.Version())
	}
	// A restart keeps both nodes' lessons.
	a2 := open("node-a")
	if got := score(a2, spam); got != score(a, spam) {
		t.Errorf("node a after a restart scores %.3f, want %.3f", got, score(a, spam))
	}
	if got := score(a2, ham); got != score(b, ham) {
		t.Errorf("node a after a restart scores B's lesson %.3f, want %.3f", got, score(b, ham))
	}
	// Export is the fleet's overlay.
	exported := a2.Export()

	// B resets the fleet's overlay; A learns before it hears of it.
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a2.Learn(Features{3, 40}, nil, true); err != nil {
		t.Fatal(err)
	}
	refresh(a2, b)
	for name, l := range map[string]*Learner{"a": a2, "b": b} {
		if score(l, spam) != seedSpam || score(l, ham) != seedHam || l.Info().Learned != 0 {
			t.Errorf("node %s after B's reset: %.3f %.3f, %d lessons; want the seed's %.3f %.3f, none",
				name, score(l, spam), score(l, ham), l.Info().Learned, seedSpam, seedHam)
		}
	}
	if a3 := open("node-a"); score(a3, spam) != seedSpam || score(a3, Features{3, 40}) != score(open("node-c"), Features{3, 40}) {
		t.Error("node a's lesson from before it heard of the reset survived in the database")
	}
	// A imports the exported overlay: B scores with it.
	if err := a2.Import(exported); err != nil {
		t.Fatal(err)
	}
	refresh(b)
	if got, want := score(b, spam), score(a2, spam); got != want || got == seedSpam {
		t.Errorf("node b after A's import scores %.3f, want A's %.3f", got, want)
	}
	if b.Info().Learned != 2 {
		t.Errorf("node b after A's import counts %d lessons, want the export's 2", b.Info().Learned)
	}
}
