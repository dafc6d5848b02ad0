package main

import (
	"encoding/csv"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
)

// logsCSVHeader is the header row of `outguard logs --csv`, the columns
// of the console's export (docs/api.md, "CSV export").
var logsCSVHeader = []string{"time", "id", "status", "verdict", "score", "band", "user", "domain", "identity", "sender",
	"recipients", "subject", "message_id", "client_ip", "size"}

// writeLogsCSV writes every record of the search as CSV, following the
// cursors page by page; a cell a spreadsheet would take for a formula is
// prefixed with an apostrophe, as in the console's export.
func writeLogsCSV(w io.Writer, cl *apiClient, query url.Values) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	cw.Write(logsCSVHeader)
	for {
		var res apiv1.SearchResponse
		if err := cl.call("GET", "/messages", query, nil, &res); err != nil {
			cw.Flush()
			return err
		}
		for _, m := range res.Messages {
			cw.Write(logsCSVRow(m))
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if res.NextCursor == "" {
			return nil
		}
		query.Set("cursor", res.NextCursor)
	}
}

func logsCSVRow(m apiv1.Message) []string {
	addrs := make([]string, len(m.Recipients))
	for i, r := range m.Recipients {
		addrs[i] = r.Address
	}
	band := m.Band
	if m.Verdict == "none" {
		band = ""
	}
	row := []string{m.Time.UTC().Format(time.RFC3339), m.ID, m.Status, m.Verdict, strconv.FormatFloat(m.Score, 'f', 2, 64), band,
		m.User, m.Domain, m.Identity, m.Sender, strings.Join(addrs, " "), m.Subject, m.MessageID, m.ClientIP, strconv.FormatInt(m.Size, 10)}
	for i, v := range row {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			row[i] = "'" + v
		}
	}
	return row
}
