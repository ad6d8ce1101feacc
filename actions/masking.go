package actions

// maskResult masks every text of a run's result that a step or a provider
// may have put words in (reasons, last lines), with every secret known at
// the end of the run: the summary, result.json and CI annotations are
// built from it, and a secret announced after a reason was worded is
// still caught.
func maskResult(res *Result, m *Masker) {
	res.Err = m.Mask(res.Err)
	for _, j := range res.Jobs {
		j.Reason = m.Mask(j.Reason)
		for _, s := range j.Steps {
			s.Reason = m.Mask(s.Reason)
			for i, line := range s.Tail {
				s.Tail[i] = m.Mask(line)
			}
		}
	}
}
