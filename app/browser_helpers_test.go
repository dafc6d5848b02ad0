package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is headless Chromium driven through chromedp for the console's
// browser tests; it is closed when the test ends.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Chromium at chrome (chromiumPath) at 1280x900, with
// every step of the test bounded by total.
func newBrowser(t *testing.T, chrome string, total time.Duration) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(bctx, total)
	t.Cleanup(cancelT)
	return &browser{t: t, ctx: ctx}
}

// do runs one step's actions (30 s at most), failing the test with the
// page's address and text when one fails.
func (b *browser) do(step string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		page, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v\nat %s:\n%s", step, err, loc, page)
	}
}

// text is the visible text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// screenshotDir is the folder sub of where the browser tests save
// screenshots: $OUTGUARD_SCREENSHOT_DIR, or testdata/screenshots (ignored
// by git).
func screenshotDir(t *testing.T, sub string) string {
	t.Helper()
	dir := os.Getenv("OUTGUARD_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "screenshots")
	}
	dir = filepath.Join(dir, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
