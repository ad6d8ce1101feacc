package actions

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/nixflow/nixflow/compiler"
	"github.com/nixflow/nixflow/executors"
)

// parseEnvFile parses what steps append to JOB_ENV and JOB_OUTPUT: lines
// `KEY=VALUE` (also written `export KEY=VALUE`), or `KEY<<DELIM`, the value's lines, and `DELIM` alone on a
// line. The file is parsed, never sourced: nothing in it is executed or
// expanded. Blank lines are ignored. The returned keys keep their order of
// appearance; a later value of the same key wins. Lines are numbered
// after linesBefore, the lines of the file before data.
//
// Errors name the line and, when it is a valid name, the variable; they
// never quote other text of the file: a step writes values there, and a
// malformed line may be a value (`echo "$TOKEN<<" >> $JOB_ENV`).
func parseEnvFile(data []byte, linesBefore int) (keys []string, values map[string]string, err error) {
	values = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), maxEnvLine)
	lineNo := linesBefore
	for sc.Scan() {
		lineNo++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		// `export KEY=VALUE`, as a step written to be sourced appends:
		// the same as KEY=VALUE (the value is still taken as is).
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimLeft(rest, " ")
		}
		var key, value string
		eq := strings.IndexByte(line, '=')
		heredoc := strings.Index(line, "<<")
		switch {
		case heredoc > 0 && (eq < 0 || heredoc < eq):
			key = line[:heredoc]
			delim := line[heredoc+2:]
			if !executors.ValidName(key) {
				return nil, nil, fmt.Errorf("line %d: invalid variable name before <<", lineNo)
			}
			if delim == "" {
				return nil, nil, fmt.Errorf("line %d: %s<< has an empty delimiter", lineNo, key)
			}
			start := lineNo
			var lines []string
			closed := false
			for sc.Scan() {
				lineNo++
				l := strings.TrimSuffix(sc.Text(), "\r")
				if l == delim {
					closed = true
					break
				}
				lines = append(lines, l)
			}
			if !closed {
				return nil, nil, fmt.Errorf("line %d: value of %s is not closed by its delimiter line", start, key)
			}
			value = strings.Join(lines, "\n")
		case eq > 0:
			key, value = line[:eq], line[eq+1:]
		default:
			return nil, nil, fmt.Errorf("line %d: expected KEY=VALUE or KEY<<DELIMITER", lineNo)
		}
		if !executors.ValidName(key) {
			return nil, nil, fmt.Errorf("line %d: invalid variable name before =", lineNo)
		}
		if _, seen := values[key]; !seen {
			keys = append(keys, key)
		}
		values[key] = value
	}
	if err := sc.Err(); err == bufio.ErrTooLong {
		return nil, nil, fmt.Errorf("line %d: longer than %d MiB", lineNo+1, maxEnvLine>>20)
	} else if err != nil {
		return nil, nil, err
	}
	return keys, values, nil
}

// maxEnvLine bounds a line of JOB_ENV or JOB_OUTPUT.
const maxEnvLine = 64 << 20

// outputEnvName is the variable under which dependents see a job's output.
func outputEnvName(job, key string) string {
	return compiler.OutputEnvName(job, key)
}
