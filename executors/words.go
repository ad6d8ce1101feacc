package executors

import "strconv"

// Count says n things: "1 container", "2 containers" (one and many are
// the thing's two forms).
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
