// ctl_backup_absent.go owns the answer of `etcdlite ctl backup` in a build
// without the server's backup (backup.go, written on another branch, defines
// runBackup; delete this file when merging it).
package main

import (
	"fmt"
	"os"
)

// runBackup reports that this build has no backup and fails.
func runBackup(args []string) int {
	fmt.Fprintf(os.Stderr, "Error:  backup is not built into this binary (arguments %q)\n", args)
	return ctlExitBadArgs
}
