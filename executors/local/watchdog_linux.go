//go:build linux

package local

// watchdogSupported: the watchdog finds the steps in /proc.
const watchdogSupported = true

// sweepSteps kills what is left of an executor's steps: the processes of
// their cgroups (cgroupPrefix, see cgroupBase.prefixOf), then every
// process whose environment carries a cookie starting with token.
func sweepSteps(token, cgroupPrefix string) {
	if cgroupPrefix != "" {
		killCgroups(cgroupPrefix)
	}
	killByCookie(token+".", 0, true)
}
