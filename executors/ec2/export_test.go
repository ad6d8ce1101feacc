package ec2

// For the external tests: the guard's sweeper and its notes, and the
// run directory's records.
var (
	SweepInstances = sweepInstances
	LaunchNote     = launchNote
	AnsweredNote   = answeredNote
	InstanceNote   = instanceNote
	TerminatedNote = terminatedNote
	WriteRecord    = writeRecord
	KeysDir        = keysDir
)
