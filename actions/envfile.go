package actions

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/nixflow/nixflow/compiler"
)

// parseEnvFile parses what steps append to JOB_ENV and JOB_OUTPUT: lines
// `KEY=VALUE`, or `KEY<<DELIM`, the value's lines, and `DELIM` alone on a
// line. The file is parsed, never sourced: nothing in it is executed or
// expanded. Blank lines are ignored. The returned keys keep their order of
// appearance; a later value of the same key wins.
//
// Errors name the line and, when it is a valid name, the variable; they
// never quote other text of the file: a step writes values there, and a
// malformed line may be a value (`echo "$TOKEN<<" >> $JOB_ENV`).
func parseEnvFile(data []byte) (keys []string, values map[string]string, err error) {
	values = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		var key, value string
		eq := strings.IndexByte(line, '=')
		heredoc := strings.Index(line, "<<")
		switch {
		case heredoc > 0 && (eq < 0 || heredoc < eq):
			key = line[:heredoc]
			delim := line[heredoc+2:]
			if !validName(key) {
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
		if !validName(key) {
			return nil, nil, fmt.Errorf("line %d: invalid variable name before =", lineNo)
		}
		if _, seen := values[key]; !seen {
			keys = append(keys, key)
		}
		values[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return keys, values, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// outputEnvName is the variable under which dependents see a job's output.
func outputEnvName(job, key string) string {
	return compiler.OutputEnvName(job, key)
}
