package ledger

import (
	"fmt"
	"strings"

	"github.com/strata-events/strata"
)

// TilePath returns the C2SP tlog-tiles path of a tile of width w (1 to 256 hashes):
// "tile/L/N" for a full tile, "tile/L/N.p/W" for a partial one, with N written in groups of
// three digits ("x001/x234/067"). A server can serve [strata.LedgerStore.LedgerTiles] data under
// these paths, truncated to w hashes.
func TilePath(id strata.LedgerTileID, w int) string {
	n := id.Index
	var parts []string
	for {
		parts = append(parts, fmt.Sprintf("%03d", n%1000))
		n /= 1000
		if n == 0 {
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tile/%d/", id.Level)
	for i := len(parts) - 1; i >= 0; i-- {
		if i > 0 {
			b.WriteString("x")
		}
		b.WriteString(parts[i])
		if i > 0 {
			b.WriteString("/")
		}
	}
	if w > 0 && w < tileW {
		fmt.Fprintf(&b, ".p/%d", w)
	}
	return b.String()
}
