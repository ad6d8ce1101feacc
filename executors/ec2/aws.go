package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// Clients are the AWS API clients of one region.
type Clients struct {
	EC2    *ec2.Client
	EBS    *ebs.Client
	Region string
}

// CredentialsHint says how to give nixflow AWS credentials.
const CredentialsHint = "configure AWS credentials: AWS_PROFILE (after 'aws sso login' for SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"

// NoCredentials reports whether err is the SDK's failure to find
// credentials: nothing was sent. (The SDK has no error type for it.)
func NoCredentials(err error) bool {
	return err != nil && strings.Contains(err.Error(), "get credentials")
}

// ErrNoRegion is an AWS configuration that names no region.
var ErrNoRegion = errors.New("no AWS region: set the executor's region, --region, or AWS_REGION")

// NewClients makes the EC2 and EBS clients from the standard configuration
// chain (environment, shared config and credentials files, SSO, instance
// roles), for region (the chain's region when empty). endpoint, when set,
// overrides the endpoint of both services; without it the standard
// variables AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_EBS and AWS_ENDPOINT_URL
// apply. Failed calls (throttled, a connection refused) are retried with
// backoff by the SDK: up to 10 attempts, waits up to 20 s, unless the
// configuration says how many (AWS_MAX_ATTEMPTS, max_attempts).
func NewClients(ctx context.Context, region, endpoint string) (*Clients, error) {
	// The SDK's own log (a warning that the instance metadata service
	// answered in the old way, when it looks there for credentials) is
	// not for nixflow's users: what fails comes back as an error.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.RetryMaxAttempts == 0 {
		cfg.Retryer = func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 10
				o.MaxBackoff = 20 * time.Second
			})
		}
	}
	if cfg.Region == "" {
		return nil, ErrNoRegion
	}
	c := &Clients{Region: cfg.Region}
	c.EC2 = ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	c.EBS = ebs.NewFromConfig(cfg, func(o *ebs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return c, nil
}

// apiCode returns the error code of an AWS API error, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// capacityCodes are the RunInstances errors that say AWS has no machine
// of that kind right now: worth a few more tries, then a clear report.
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity":         true,
	"InsufficientHostCapacity":             true,
	"InsufficientReservedInstanceCapacity": true,
	"InsufficientCapacity":                 true,
}
