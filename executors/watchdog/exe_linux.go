package watchdog

// executable is this very program, even if its file was replaced or
// removed since it started (os.Executable names the path, whatever is
// there now).
func executable() (string, error) { return "/proc/self/exe", nil }
