package actions

// Domain names where a failure came from, so that the summary and the exit
// status can tell a broken step from broken infrastructure.
type Domain string

// The failure domains.
const (
	DomainNone        Domain = ""
	DomainStep        Domain = "step"
	DomainExecutor    Domain = "executor"
	DomainBuild       Domain = "build"
	DomainEnvironment Domain = "environment"
)
