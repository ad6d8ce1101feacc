package ec2

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestReapableNames says which job an instance ran, or which executor a
// shared one served (it has no job of its own).
func TestReapableNames(t *testing.T) {
	now := time.Now()
	inst := func(tags ...string) types.Instance {
		i := types.Instance{InstanceId: aws.String("i-1"), State: &types.InstanceState{Name: types.InstanceStateNameRunning}}
		for j := 0; j < len(tags); j += 2 {
			i.Tags = append(i.Tags, types.Tag{Key: aws.String(tags[j]), Value: aws.String(tags[j+1])})
		}
		return i
	}
	for _, c := range []struct {
		in   types.Instance
		want string
	}{
		{inst(TagRunID, "r", TagJob, "build"), "build"},
		{inst(TagRunID, "r", TagExecutor, "builders"), "shared builders"},
	} {
		x, ok := reapable(c.in, now, ReapOptions{})
		if !ok || x.Job != c.want || x.Reason != "no readable expiry" {
			t.Errorf("reapable(%v) = %+v, %v; want job %q", c.in.Tags, x, ok, c.want)
		}
	}
}
