package ec2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/nixflow/nixflow/executors"
)

// imageID returns the AMI to launch: the configured one, or the one made
// from the machine image (built first if needed), once per executor.
func (x *Executor) imageID(ctx context.Context, c *Clients, spec executors.JobSpec) (string, error) {
	if x.cfg.AMI != "" {
		return x.cfg.AMI, nil
	}
	x.amiMu.Lock()
	defer x.amiMu.Unlock()
	if x.ami != "" {
		return x.ami, nil
	}
	if _, err := os.Stat(x.cfg.Machine); err != nil {
		if x.cfg.MachineDrv == "" {
			return "", fmt.Errorf("machine %q is not built on this machine, and the workflow gives no derivation to build it", x.cfg.Machine)
		}
		spec.Logf("building machine image %s", x.cfg.MachineDrv)
		root := filepath.Join(spec.RunDir, "gcroots", "ec2-machine")
		cmd := executors.OwnGroupContext(exec.CommandContext(ctx, "nix-store", "--realise", x.cfg.MachineDrv, "--add-root", root, "--indirect"))
		cmd.WaitDelay = 5 * time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("build machine image: %w", ctx.Err())
			}
			return "", fmt.Errorf("build machine image %s: %w: %s", x.cfg.MachineDrv, err, lastLines(out, 10))
		}
	}
	ami, err := EnsureImage(ctx, c, x.cfg.Machine, ImageOptions{Logf: spec.Logf})
	if err != nil {
		return "", err
	}
	x.ami = ami
	return ami, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ImageOptions tune EnsureImage.
type ImageOptions struct {
	// Logf reports progress; may be nil.
	Logf func(format string, args ...any)
	// Parallel bounds the blocks uploaded at once (default 16).
	Parallel int
}

// StoreHash is the hash part of a store path's name.
func StoreHash(storePath string) string {
	h, _, _ := strings.Cut(filepath.Base(storePath), "-")
	return h
}

// imageInfo is what NixOS image builders write in nix-support/image-info.json.
type imageInfo struct {
	File     string `json:"file"`
	System   string `json:"system"`
	BootMode string `json:"boot_mode"`
}

// DiskImage is the raw disk image of a machine's store path.
type DiskImage struct {
	File string
	// Architecture is the AMI architecture: x86_64 or arm64.
	Architecture string
	// BootMode is "legacy-bios", "uefi" or "" (AWS's default).
	BootMode string
}

// FindDiskImage finds the raw disk image in a machine's store path: the
// path itself when it is a file; else the file named by
// nix-support/image-info.json (as NixOS's amazonImage writes it); else the
// only *.img or *.raw file in it.
func FindDiskImage(storePath string) (DiskImage, error) {
	img := DiskImage{Architecture: "x86_64"}
	fi, err := os.Stat(storePath)
	if err != nil {
		return img, fmt.Errorf("machine image: %w", err)
	}
	if !fi.IsDir() {
		img.File = storePath
		return img, nil
	}
	if data, err := os.ReadFile(filepath.Join(storePath, "nix-support", "image-info.json")); err == nil {
		var info imageInfo
		if err := json.Unmarshal(data, &info); err != nil {
			return img, fmt.Errorf("machine image %s: image-info.json: %w", storePath, err)
		}
		img.File, img.BootMode = info.File, info.BootMode
		if strings.HasPrefix(info.System, "aarch64-") {
			img.Architecture = "arm64"
		}
	} else {
		var found []string
		for _, pat := range []string{"*.img", "*.raw"} {
			m, _ := filepath.Glob(filepath.Join(storePath, pat))
			found = append(found, m...)
		}
		if len(found) != 1 {
			return img, fmt.Errorf("machine image %s: found %d raw disk images (*.img, *.raw), want 1\nhint: point machine at a NixOS amazonImage built with format \"raw\", or at the image file itself", storePath, len(found))
		}
		img.File = found[0]
	}
	if ext := filepath.Ext(img.File); ext == ".vhd" || ext == ".qcow2" || ext == ".vmdk" {
		return img, fmt.Errorf("machine image %s is %s, not a raw disk image\nhint: build the NixOS image with amazonImage.format = \"raw\"", img.File, ext)
	}
	return img, nil
}

// EnsureImage returns the AMI made from the machine image at storePath:
// the one tagged with its store hash when there is one, else a new one,
// uploaded with the EBS direct APIs (no S3 bucket, no import task) and
// registered (hvm, ENA).
func EnsureImage(ctx context.Context, c *Clients, storePath string, o ImageOptions) (string, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	hash := StoreHash(storePath)
	if id, err := findImage(ctx, c, hash); err != nil || id != "" {
		if id != "" {
			logf("reusing %s for machine %s", id, filepath.Base(storePath))
		}
		return id, err
	}
	img, err := FindDiskImage(storePath)
	if err != nil {
		return "", err
	}
	tags := []types.Tag{
		{Key: aws.String(TagImageHash), Value: aws.String(hash)},
		{Key: aws.String(TagStorePath), Value: aws.String(storePath)},
		{Key: aws.String("Name"), Value: aws.String("nixflow " + filepath.Base(storePath))},
	}
	snap, err := uploadSnapshot(ctx, c, img.File, hash, o, logf)
	if err != nil {
		return "", err
	}
	in := &ec2.RegisterImageInput{
		Name:               aws.String("nixflow-" + hash),
		Description:        aws.String("nixflow machine " + storePath),
		Architecture:       types.ArchitectureValues(img.Architecture),
		VirtualizationType: aws.String("hvm"),
		EnaSupport:         aws.Bool(true),
		RootDeviceName:     aws.String("/dev/xvda"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs: &types.EbsBlockDevice{
				SnapshotId: aws.String(snap), DeleteOnTermination: aws.Bool(true), VolumeType: types.VolumeTypeGp3,
			},
		}},
	}
	if img.BootMode != "" {
		in.BootMode = types.BootModeValues(img.BootMode)
	}
	reg, err := c.EC2.RegisterImage(ctx, in)
	if err != nil {
		deleteSnapshot(c, snap)
		return "", fmt.Errorf("register image: %w", err)
	}
	id := aws.ToString(reg.ImageId)
	if _, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id, snap}, Tags: tags}); err != nil {
		return "", fmt.Errorf("tag image %s: %w", id, err)
	}
	w := ec2.NewImageAvailableWaiter(c.EC2, func(o *ec2.ImageAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 500*time.Millisecond, 15*time.Second
	})
	if err := w.Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}}, 30*time.Minute); err != nil {
		return "", fmt.Errorf("wait for image %s: %w", id, err)
	}
	logf("registered %s for machine %s", id, filepath.Base(storePath))
	return id, nil
}

// findImage returns the available (or pending) AMI tagged with hash, or "".
func findImage(ctx context.Context, c *Clients, hash string) (string, error) {
	out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []types.Filter{{Name: aws.String("tag:" + TagImageHash), Values: []string{hash}}},
	})
	if err != nil {
		return "", fmt.Errorf("look for the machine's image: %w", err)
	}
	for _, im := range out.Images {
		if im.State == types.ImageStateAvailable || im.State == types.ImageStatePending {
			return aws.ToString(im.ImageId), nil
		}
	}
	return "", nil
}

// blockSize is the EBS direct APIs' block size.
const blockSize = 512 << 10

// uploadSnapshot writes file into a new snapshot, block by block, in
// parallel with a bound, skipping blocks of zeros (a new snapshot reads
// as zeros there), and waits for it to complete.
func uploadSnapshot(ctx context.Context, c *Clients, file, hash string, o ImageOptions, logf func(string, ...any)) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("machine image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	size := fi.Size()
	gib := (size + 1<<30 - 1) >> 30
	if gib == 0 {
		gib = 1
	}
	start, err := c.EBS.StartSnapshot(ctx, &ebs.StartSnapshotInput{
		VolumeSize:  aws.Int64(gib),
		Description: aws.String("nixflow machine " + filepath.Base(file)),
		ClientToken: aws.String(newToken()),
		Timeout:     aws.Int32(60),
		Tags:        []ebstypes.Tag{{Key: aws.String(TagImageHash), Value: aws.String(hash)}},
	})
	if err != nil {
		return "", fmt.Errorf("start snapshot: %w", err)
	}
	snap := aws.ToString(start.SnapshotId)
	ok := false
	defer func() {
		if !ok {
			deleteSnapshot(c, snap)
		}
	}()
	blocks := (size + blockSize - 1) / blockSize
	logf("uploading %s (%d MiB) to snapshot %s", filepath.Base(file), size>>20, snap)
	parallel := o.Parallel
	if parallel <= 0 {
		parallel = 16
	}
	var changed atomic.Int32
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := int64(0); i < blocks; i++ {
		g.Go(func() error {
			buf := make([]byte, blockSize)
			n, err := f.ReadAt(buf, i*blockSize)
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			if n == 0 || allZero(buf[:n]) {
				return nil
			}
			sum := sha256.Sum256(buf)
			_, err = c.EBS.PutSnapshotBlock(gctx, &ebs.PutSnapshotBlockInput{
				SnapshotId:        aws.String(snap),
				BlockIndex:        aws.Int32(int32(i)),
				BlockData:         bytes.NewReader(buf),
				DataLength:        aws.Int32(blockSize),
				Checksum:          aws.String(base64.StdEncoding.EncodeToString(sum[:])),
				ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
			})
			if err != nil {
				return fmt.Errorf("block %d: %w", i, err)
			}
			changed.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", fmt.Errorf("upload %s: %w", file, err)
	}
	if _, err := c.EBS.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{
		SnapshotId: aws.String(snap), ChangedBlocksCount: aws.Int32(changed.Load()),
	}); err != nil {
		return "", fmt.Errorf("complete snapshot %s: %w", snap, err)
	}
	logf("uploaded %d of %d blocks (the others are zeros)", changed.Load(), blocks)
	w := ec2.NewSnapshotCompletedWaiter(c.EC2, func(o *ec2.SnapshotCompletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 500*time.Millisecond, 15*time.Second
	})
	if err := w.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}}, 30*time.Minute); err != nil {
		return "", fmt.Errorf("wait for snapshot %s: %w", snap, err)
	}
	ok = true
	return snap, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// deleteSnapshot removes a snapshot that will not become an image, with
// its own context.
func deleteSnapshot(c *Clients, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _ = c.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
}

// Image is an AMI made by nixflow from a machine image.
type Image struct {
	ID        string
	StorePath string
	Hash      string
	Created   string
	Snapshots []string
	// InUse says that an instance not terminated runs it.
	InUse bool
}

// ListImages lists the AMIs nixflow made, by creation date.
func ListImages(ctx context.Context, c *Clients) ([]Image, error) {
	out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{TagImageHash}}},
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var images []Image
	byID := map[string]int{}
	for _, im := range out.Images {
		i := Image{ID: aws.ToString(im.ImageId), Created: aws.ToString(im.CreationDate)}
		for _, t := range im.Tags {
			switch aws.ToString(t.Key) {
			case TagImageHash:
				i.Hash = aws.ToString(t.Value)
			case TagStorePath:
				i.StorePath = aws.ToString(t.Value)
			}
		}
		for _, b := range im.BlockDeviceMappings {
			if b.Ebs != nil && b.Ebs.SnapshotId != nil {
				i.Snapshots = append(i.Snapshots, *b.Ebs.SnapshotId)
			}
		}
		byID[i.ID] = len(images)
		images = append(images, i)
	}
	if len(images) > 0 {
		ids := make([]string, 0, len(images))
		for _, i := range images {
			ids = append(ids, i.ID)
		}
		p := ec2.NewDescribeInstancesPaginator(c.EC2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
			{Name: aws.String("image-id"), Values: ids},
			{Name: aws.String("instance-state-name"), Values: liveStates},
		}})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list instances using the images: %w", err)
			}
			for _, r := range page.Reservations {
				for _, inst := range r.Instances {
					if k, ok := byID[aws.ToString(inst.ImageId)]; ok {
						images[k].InUse = true
					}
				}
			}
		}
	}
	sort.Slice(images, func(a, b int) bool { return images[a].Created < images[b].Created })
	return images, nil
}

// DeleteImage deregisters an image and deletes its snapshots.
func DeleteImage(ctx context.Context, c *Clients, im Image) error {
	if _, err := c.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(im.ID)}); err != nil {
		return fmt.Errorf("deregister %s: %w", im.ID, err)
	}
	for _, s := range im.Snapshots {
		if _, err := c.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)}); err != nil {
			return fmt.Errorf("delete snapshot %s of %s: %w", s, im.ID, err)
		}
	}
	return nil
}
