//go:build !unix

package disk

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir creates DIR/LOCK; without flock(2) it cannot keep a second process
// out, which trawl (Linux only) does not need.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool lock file %q: %w", path, err)
	}
	return f, nil
}
