package hasher

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// errMountGone reports a watched root that was a mount point and no longer
// is: the filesystem was unmounted (often lazily, after its server or FUSE
// daemon died) and the directory underneath shows through. Hashing that
// directory would read as "every file deleted", so it is an error of kind
// not_connected instead, for as long as it lasts.
var errMountGone = fmt.Errorf("the filesystem mounted here is gone and the directory underneath shows through: %w", syscall.ENOTCONN)

// mountID returns the ID of the mount holding path (statx STATX_MNT_ID,
// Linux 5.8+), or its device number where the kernel has no mount IDs. A bind
// mount from the same filesystem keeps the device but gets its own mount ID.
func mountID(path cstr) (uint64, error) {
	var stx unix.Statx_t
	if err := statxC(false, unix.AT_FDCWD, path, unix.AT_STATX_DONT_SYNC, unix.STATX_MNT_ID|unix.STATX_INO, &stx); err != nil {
		return 0, err
	}
	return mountIDOf(&stx), nil
}

// mountIDOf returns the mount ID in stx, or the device where there is none.
func mountIDOf(stx *unix.Statx_t) uint64 {
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		return stx.Mnt_id
	}
	return unix.Mkdev(stx.Dev_major, stx.Dev_minor)
}

// mountState remembers whether a root was a mount point when first seen.
type mountState struct {
	known      bool
	mountPoint bool
	id         uint64
}

// check compares root's mount with what was seen before. It returns
// errMountGone when a root that was a mount point now sits on its parent's
// mount. A root that is remounted (a new mount ID that is still not its
// parent's) is accepted: its content is the new filesystem's.
// id is the root's mount ID now; root and parent are the root's path and
// its parent's (filepath.Dir). While the root's mount ID stays what it was
// at the last check, nothing can have changed and the parent is not looked
// at.
func (m *mountState) check(id uint64, root, parent cstr) error {
	if m.known && id == m.id {
		return nil
	}
	pid, err := mountID(parent)
	if err != nil {
		return nil // cannot tell; nothing to compare against
	}
	onOwnMount := id != pid || root == parent
	switch {
	case !m.known:
		*m = mountState{known: true, mountPoint: onOwnMount, id: id}
	case m.mountPoint && !onOwnMount:
		return errMountGone // m.id stays the mount that went away
	case onOwnMount:
		// Remounted, or mounted after pollreload started: from now on its
		// disappearance is an error too.
		m.mountPoint, m.id = true, id
	default:
		m.id = id
	}
	return nil
}

// pseudoFilesystems are kernel interfaces, not configuration: their files
// report size 0, some never end (/proc/PID/pagemap), and their content
// changes with every read, so watching them would reload forever. A root on
// one is refused (the main package at start, Scan on every scan), and one
// mounted below a root is skipped.
var pseudoFilesystems = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.SELINUX_MAGIC:       "selinuxfs",
	unix.SMACK_MAGIC:         "smackfs",
	unix.BPF_FS_MAGIC:        "bpf",
	unix.PSTOREFS_MAGIC:      "pstore",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	unix.BINFMTFS_MAGIC:      "binfmt_misc",
	unix.NSFS_MAGIC:          "nsfs",
	unix.HUGETLBFS_MAGIC:     "hugetlbfs",
	configfsMagic:            "configfs",
	mqueueMagic:              "mqueue",
}

// Magic numbers x/sys does not name (linux/magic.h).
const (
	configfsMagic = 0x62656570
	mqueueMagic   = 0x19800202
)

// PseudoFilesystem returns the name of a kernel pseudo-filesystem from its
// statfs type (f_type), and whether it is one.
func PseudoFilesystem(fsType int64) (name string, ok bool) {
	name, ok = pseudoFilesystems[fsType]
	return name, ok
}
