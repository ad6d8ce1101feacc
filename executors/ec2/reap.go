package ec2

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// liveStates are the states of an instance that is not (being) terminated.
var liveStates = []string{"pending", "running", "stopping", "stopped"}

// ReapOptions say which of nixflow's instances Reap terminates.
type ReapOptions struct {
	// OlderThan, when positive, also reaps instances launched longer ago.
	OlderThan time.Duration
	// DryRun lists what would be terminated and terminates nothing.
	DryRun bool
	// Now is the current time (time.Now when zero).
	Now time.Time
	// RunOver reports whether a run is over (its result written, or the
	// nixflow that ran it gone). Runs it does not know are not over:
	// their instances go when they expire.
	RunOver func(runID string) bool
}

// Reaped is one instance Reap found.
type Reaped struct {
	InstanceID string
	RunID      string
	// Job is the job the instance ran, or "shared NAME" for an executor's
	// shared instance.
	Job      string
	State    string
	Launched time.Time
	// Reason says why it is reaped: "expired", "run over", "older than 1h",
	// "no readable expiry".
	Reason string
	// Terminated is set once TerminateInstances accepted it.
	Terminated bool
}

// Reap finds the instances tagged by nixflow that are not terminated and
// terminates those whose run is over, whose expiry passed or cannot be
// read, or that are older than OlderThan. It returns what it found to
// reap, by launch time.
func Reap(ctx context.Context, c *Clients, o ReapOptions) ([]Reaped, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	p := ec2.NewDescribeInstancesPaginator(c.EC2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag-key"), Values: []string{TagRunID}},
		{Name: aws.String("instance-state-name"), Values: liveStates},
	}})
	var found []Reaped
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				if x, ok := reapable(inst, now, o); ok {
					found = append(found, x)
				}
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Launched.Before(found[j].Launched) })
	if o.DryRun || len(found) == 0 {
		return found, nil
	}
	for start := 0; start < len(found); start += 50 {
		end := min(start+50, len(found))
		ids := make([]string, 0, end-start)
		for _, f := range found[start:end] {
			ids = append(ids, f.InstanceID)
		}
		out, err := c.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		if err != nil {
			return found, fmt.Errorf("terminate %v: %w", ids, err)
		}
		done := map[string]bool{}
		for _, ch := range out.TerminatingInstances {
			done[aws.ToString(ch.InstanceId)] = true
		}
		for k := start; k < end; k++ {
			found[k].Terminated = done[found[k].InstanceID]
		}
	}
	return found, nil
}

func reapable(inst types.Instance, now time.Time, o ReapOptions) (Reaped, bool) {
	x := Reaped{
		InstanceID: aws.ToString(inst.InstanceId),
		State:      string(inst.State.Name),
		Launched:   aws.ToTime(inst.LaunchTime),
	}
	var expires string
	for _, t := range inst.Tags {
		switch aws.ToString(t.Key) {
		case TagRunID:
			x.RunID = aws.ToString(t.Value)
		case TagJob:
			x.Job = aws.ToString(t.Value)
		case TagExecutor:
			if x.Job == "" {
				x.Job = "shared " + aws.ToString(t.Value)
			}
		case TagExpiresAt:
			expires = aws.ToString(t.Value)
		}
	}
	exp, err := time.Parse(time.RFC3339, expires)
	switch {
	case err != nil:
		x.Reason = "no readable expiry"
	case !now.Before(exp):
		x.Reason = "expired"
	case o.RunOver != nil && o.RunOver(x.RunID):
		x.Reason = "run over"
	case o.OlderThan > 0 && !x.Launched.IsZero() && now.Sub(x.Launched) > o.OlderThan:
		x.Reason = "older than " + o.OlderThan.String()
	default:
		return x, false
	}
	return x, true
}
