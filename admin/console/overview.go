package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/quarantine"
)

// Charts are computed here and drawn by the overview template as inline
// SVG: no script and no external library.

// chartSeries is one verdict's band of the traffic chart.
type chartSeries struct {
	Name, Class string
}

var trafficSeries = []chartSeries{{"clean", "c-clean"}, {"spam", "c-spam"}, {"phishing", "c-phishing"}, {"virus", "c-virus"}, {"unclassified", "c-none"}}

// chartRect is one bar segment.
type chartRect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// chartLabel is one axis label.
type chartLabel struct {
	X, Y float64
	Text string
}

// trafficChart is the stacked bar chart of traffic by verdict.
type trafficChart struct {
	W, H, PlotX, PlotY, PlotW, PlotH float64
	Bars                             []chartRect
	XLabels, YLabels                 []chartLabel
	Grid                             []float64
	Series                           []chartSeries
	Rows                             []trafficRow
	Total                            int64
}

// trafficRow is one step of the chart, for the table beside it.
type trafficRow struct {
	Label  string
	Counts []int64
	All    int64
}

// niceMax is the chart's top: a round number at least v that four grid
// steps divide evenly, so that every axis label is a whole, evenly spaced
// number.
func niceMax(v int64) int64 {
	for _, c := range []int64{4, 8, 12, 16, 20, 40, 60, 80, 100} {
		if v <= c {
			return c
		}
	}
	m := int64(1)
	for m*10 < v {
		m *= 10
	}
	for _, f := range []int64{1, 2, 4, 5, 10} {
		if f*m >= v {
			return f * m
		}
	}
	return 10 * m
}

func buildTraffic(points []quarantine.SeriesPoint, step time.Duration) trafficChart {
	ch := trafficChart{W: 800, H: 268, PlotX: 48, PlotY: 12, PlotW: 740, PlotH: 210, Series: trafficSeries}
	var top int64
	for _, p := range points {
		top = max(top, p.All)
		ch.Total += p.All
	}
	top = niceMax(top)
	for i := 0; i <= 4; i++ {
		y := ch.PlotY + ch.PlotH - ch.PlotH*float64(i)/4
		ch.Grid = append(ch.Grid, y)
		ch.YLabels = append(ch.YLabels, chartLabel{X: ch.PlotX - 6, Y: y + 4, Text: strconv.FormatInt(top*int64(i)/4, 10)})
	}
	n := max(len(points), 1)
	slot := ch.PlotW / float64(n)
	bw := max(slot*0.75, 1)
	every := max(1, (n+7)/8)
	for i, p := range points {
		other := max(p.All-p.Clean-p.Spam-p.Phishing-p.Virus, 0)
		counts := []int64{p.Clean, p.Spam, p.Phishing, p.Virus, other}
		label := p.Start.UTC().Format("15:04")
		if step >= 24*time.Hour {
			label = p.Start.UTC().Format("01-02")
		}
		ch.Rows = append(ch.Rows, trafficRow{Label: p.Start.UTC().Format("2006-01-02 15:04"), Counts: counts, All: p.All})
		x := ch.PlotX + float64(i)*slot + (slot-bw)/2
		y := ch.PlotY + ch.PlotH
		for k, cnt := range counts {
			if cnt == 0 {
				continue
			}
			h := ch.PlotH * float64(cnt) / float64(top)
			y -= h
			ch.Bars = append(ch.Bars, chartRect{X: x, Y: y, W: bw, H: h, Class: trafficSeries[k].Class,
				Title: fmt.Sprintf("%s: %d %s", label, cnt, trafficSeries[k].Name)})
		}
		if i%every == 0 {
			ch.XLabels = append(ch.XLabels, chartLabel{X: x + bw/2, Y: ch.PlotY + ch.PlotH + 24, Text: label})
		}
	}
	return ch
}

// topBar is one identity of the top chart: a line of text above a
// small inline SVG bar whose width is the count relative to the largest.
type topBar struct {
	Percent      string
	Label, Count string
	Domain, URL  string
	Locked       bool
}

func buildTop(rows []reportRow) []topBar {
	var top int64 = 1
	for _, r := range rows {
		top = max(top, r.Count)
	}
	out := make([]topBar, 0, len(rows))
	for _, r := range rows {
		label := r.Key
		if label == "" {
			label = "(no identity)"
		}
		pct := max(100*float64(r.Count)/float64(top), 0.5)
		out = append(out, topBar{Percent: strconv.FormatFloat(pct, 'f', 1, 64), Label: label, Count: strconv.FormatInt(r.Count, 10),
			Domain: r.Domain, URL: r.URL, Locked: r.Locked})
	}
	return out
}

var overviewRanges = []struct{ Value, Label string }{{"24h", "last 24 hours"}, {"7d", "last 7 days"}, {"30d", "last 30 days"}}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	rng := r.URL.Query().Get("range")
	var d, step time.Duration
	switch rng {
	case "", "24h":
		rng, d, step = "24h", 24*time.Hour, time.Hour
	case "7d":
		d, step = 7*24*time.Hour, 24*time.Hour
	case "30d":
		d, step = 30*24*time.Hour, 24*time.Hour
	default:
		return ops.Errorf(ops.ErrBadRequest, "range %q: use 24h, 7d or 30d", rng)
	}
	now := c.ops.Now()
	from := now.Add(-d)
	if step == time.Hour {
		from = from.Add(time.Hour)
	} else {
		from = from.Add(24 * time.Hour)
	}
	data := map[string]any{"Title": "Overview", "Range": rng, "Ranges": overviewRanges}
	points, err := c.ops.Series(s.p, quarantine.SeriesQuery{From: from, To: now, Step: step})
	switch {
	case err == nil:
		data["Traffic"] = buildTraffic(points, step)
	case errors.Is(err, ops.ErrNoSeries):
		data["NoSeries"] = true
	default:
		return err
	}
	rows, err := c.reportRows(r.Context(), s.p, quarantine.GroupIdentity, quarantine.ClassRejected, now.Add(-d), now, 10)
	if err != nil {
		return err
	}
	data["Top"] = buildTop(rows)
	c.render(w, r, s, http.StatusOK, "overview", data)
	return nil
}
