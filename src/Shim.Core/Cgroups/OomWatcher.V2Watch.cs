using Shim.Os;
using Shim.Os.Notify;

namespace Shim.Core.Cgroups;

/// <summary>The v2 watch of one container.</summary>
public sealed partial class OomWatcher
{
    /// <summary>Exit status of a SIGKILLed process (128 + 9), the only way an OOM kill ends one.</summary>
    private const int KilledStatus = 137;

    /// <summary>v2: inotify watches on memory.events and cgroup.events; oom_kill compared with the last value.</summary>
    /// <remarks>
    /// <para>The cgroup may be gone before its last kill is read. Under runc's systemd driver it is a
    /// transient scope, and systemd removes it as soon as cgroup.events says "populated 0" (src/core/
    /// cgroup.c, unit_prune_cgroup when the scope stops), which the kernel raises while the last task
    /// exits (cgroup_exit, before the task becomes a zombie, so before the shim's SIGCHLD). oom_kill
    /// itself is counted before the SIGKILL is sent (mm/oom_kill.c __oom_kill_process), but a change
    /// of memory.events is announced at most once per 10 ms (kernel/cgroup/cgroup.c
    /// cgroup_file_notify, CGROUP_FILE_NOTIFY_MIN_INTV), later ones on a timer that is dropped with
    /// the cgroup's files (cgroup_rm_file); under memory pressure "max" moves on every failed charge,
    /// so the kill's own announcement is often a deferred one. A removed cgroup's files cannot be read
    /// even through a descriptor opened before the removal (ENODEV: kernfs refuses a deactivated
    /// node), nor opened through a kept directory descriptor (ENOENT); both tried in the systemd guest.</para>
    /// <para>What outlives the cgroup is its parent's memory.events: oom_kill is hierarchical on cgroup
    /// v2 (mm/memcontrol.c memcg_memory_event counts the event in every ancestor up to the root,
    /// unless the cgroup2 mount has memory_localevents), and the parent (system.slice, a pod's slice)
    /// stays. The parent is shared, so its rise is attributed with care. Its oom_kill is read with the
    /// container's on every read, the one the shim makes before each signal it sends the init
    /// included, as a pair checked consistent (the container's count the same before and after the
    /// parent's); only kills the parent counted after the last pair can be missed ones. (The kernel
    /// counts a kill in the cgroup first, then in each ancestor: a pair read in between can make that
    /// kill counted twice, never lost.) They are looked at only when the container's file could not
    /// be read, and claimed only by an init that exited 137, as an OOM kill ends one, when no OOM of
    /// the container was reported yet and the shim did not SIGKILL the init itself (see
    /// <see cref="ClaimAtInitExit"/>). What could still be misattributed: an init SIGKILLed from
    /// outside containerd (kill -9 on the host, systemd-oomd) whose scope goes before it is read, when
    /// a sibling under the same parent was OOM-killed since this container was last read. The parent
    /// is read, never watched: its memory.events changes with the pressure of every sibling, up to
    /// 100 times a second, and every shim under system.slice would wake for it.</para>
    /// </remarks>
    private sealed class V2Watch(OomWatcher owner, string id, Action<string> onOom, string directory)
        : Watch(owner, id, onOom)
    {
        private const int PairAttempts = 3;
        private const uint SIGKILL = 9;

        private readonly string _memoryEvents = Path.Join(directory, "memory.events");
        private readonly string _cgroupEvents = Path.Join(directory, "cgroup.events");
        private readonly string _parentEvents = Path.Join(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(directory)), "memory.events");

        // Gate.
        private ulong _lastOomKill;
        private ulong? _lastParentOomKill;   // the parent's oom_kill paired with _lastOomKill; null when the parent cannot be read (the root cgroup has no memory.events)
        private ulong _missed;               // kills the parent counted after the last pair while this cgroup could not be read
        private bool _initExited;
        private bool _reported;              // an OOM of this container went out: the init's exit claims nothing more
        private bool _killedByClient;        // the shim sent the init SIGKILL: its 137 is no OOM kill's
        private int _memoryWd = -1;
        private int _cgroupWd = -1;

        /// <summary>Reads the baseline, adds the inotify watches and arms.</summary>
        public void Start(Inotify inotify)
        {
            var (baseline, parent) = ReadPair();
            if (baseline is null)
            {
                throw new ErrnoException(ENOENT, $"read {_memoryEvents}");
            }
            int memoryWd = inotify.AddWatch(_memoryEvents, WatchMask);
            int cgroupWd = -1;
            try
            {
                cgroupWd = inotify.AddWatch(_cgroupEvents, WatchMask);
            }
            catch (ErrnoException ex) when (ex.Errno == ENOENT)
            {
                // the root cgroup has no cgroup.events; memory.events alone still works
            }
            catch
            {
                RemoveUnmapped(inotify, memoryWd);
                throw;
            }
            lock (Gate)
            {
                _lastOomKill = baseline.Get("oom_kill");
                _lastParentOomKill = parent;
                _memoryWd = memoryWd;
                _cgroupWd = cgroupWd;
                lock (Owner._lock)
                {
                    Owner.MapWd(memoryWd, this);
                    if (cgroupWd >= 0)
                    {
                        Owner.MapWd(cgroupWd, this);
                    }
                }
            }
            if (!TryArm())
            {
                Release();   // removed while being added
            }
        }

        /// <summary>Removes a watch not yet recorded in the map, unless another container shares it.</summary>
        private void RemoveUnmapped(Inotify inotify, int wd)
        {
            lock (Owner._lock)
            {
                if (Owner._byWd.ContainsKey(wd))
                {
                    return;
                }
                try
                {
                    inotify.RemoveWatch(wd);
                }
                catch (ErrnoException)
                {
                    // best effort on a failing Add
                }
            }
        }

        protected override (bool Oom, bool Gone) Poll(bool lost)
        {
            bool oom = false;
            // cgroup.events first: every kill is counted before its victim gets the SIGKILL, so once
            // "populated 0" is read, the memory.events read after it has them all (read the other way
            // round, a kill and the exit landing between the two reads were never seen)
            bool emptied = Read(_cgroupEvents) is { } cgroup && cgroup.TryGetValue("populated", out ulong populated) && populated == 0;
            var (events, parent) = ReadPair();
            // A file caught between truncate and write has no oom_kill line: keep the last value.
            if (events is not null && events.TryGetValue("oom_kill", out ulong oomKill) && oomKill > _lastOomKill)
            {
                if (parent is null && _lastParentOomKill is { } paired)
                {
                    // no fresh pair: these kills are not in the old parent value either; count them
                    // there too, so the parent's value goes on counting exactly this cgroup's kills seen
                    _lastParentOomKill = paired + (oomKill - _lastOomKill);
                }
                _lastOomKill = oomKill;
                _reported = true;
                oom = true;
            }
            if (parent is not null)
            {
                _lastParentOomKill = parent;
            }
            if (events is not null)
            {
                _missed = 0;   // this cgroup read: its own count is the truth
            }
            else if (!_initExited && _lastParentOomKill is { } before
                     && Read(_parentEvents) is { } now && now.TryGetValue("oom_kill", out ulong after) && after > before)
            {
                _missed = after - before;
            }
            bool gone = lost || emptied || (events is null && !Directory.Exists(directory));
            return (oom, gone);
        }

        /// <summary>Gate held: a watch whose cgroup went with kills in the parent unexplained waits for the init's exit status.</summary>
        protected override bool KeepWhenGone => _missed > 0 && !_initExited;

        /// <summary>Gate held: the shim is about to send the init <paramref name="signal"/>.</summary>
        protected override void Signalling(uint signal) => _killedByClient |= signal == SIGKILL;

        /// <summary>
        /// Gate held: a kill seen only in the parent is this container's if its init was SIGKILLed, not
        /// by the client through the shim, and no OOM of the container went out yet (one is all
        /// containerd needs; a second could be a sibling's).
        /// </summary>
        protected override bool ClaimAtInitExit(int status)
        {
            _initExited = true;
            bool claimed = _missed > 0 && status == KilledStatus && !_killedByClient && !_reported;
            _missed = 0;
            _reported |= claimed;
            return claimed;
        }

        /// <summary>
        /// memory.events, and the parent's oom_kill when it was read with no kill of this cgroup between
        /// (the same oom_kill before and after it); the parent is null when it cannot be read, or kills
        /// kept landing between the reads (the previous pair stays). Reads files only.
        /// </summary>
        private (Dictionary<string, ulong>? Events, ulong? ParentOomKill) ReadPair()
        {
            var events = Read(_memoryEvents);
            for (int attempt = 0; attempt < PairAttempts; attempt++)
            {
                if (events is null || !events.TryGetValue("oom_kill", out ulong before)
                    || Read(_parentEvents) is not { } parent || !parent.TryGetValue("oom_kill", out ulong parentOomKill))
                {
                    break;
                }
                var again = Read(_memoryEvents);
                if (again is null)
                {
                    break;   // went between the reads: what the first read saw still counts
                }
                if (again.TryGetValue("oom_kill", out ulong after) && after == before)
                {
                    return (again, parentOomKill);
                }
                events = again;
            }
            return (events, null);
        }

        /// <summary>A "key value" file, or null; the watcher's <see cref="BeforeRead"/> hook runs first (tests).</summary>
        private Dictionary<string, ulong>? Read(string path)
        {
            Owner.BeforeRead?.Invoke(path);
            return CgroupFiles.ReadKeyValues(path);
        }

        protected override void Release()
        {
            Span<int> wds = stackalloc int[2];
            lock (Gate)
            {
                wds[0] = _memoryWd;
                wds[1] = _cgroupWd;
                _memoryWd = -1;
                _cgroupWd = -1;
            }
            Owner.UnmapWds(this, wds);
        }
    }
}
