using Containerd.Events;
using Containerd.Task.V2;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Options;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Service;

public sealed partial class TaskService
{
    /// <summary>Create: mount the rootfs, open stdio, runc create, publish TaskCreate.</summary>
    public async Task<CreateTaskResponse> CreateAsync(CreateTaskRequest request, CancellationToken ct)
    {
        string id = request.Id;
        Identifiers.Check("create", id);
        if (string.IsNullOrEmpty(request.Bundle) || !Directory.Exists(request.Bundle))
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"create {id}: bundle \"{request.Bundle}\" does not exist");
        }
        var options = OptionsCodec.Decode(request.Options);
        lock (_gate)
        {
            if (!_containers.TryAdd(id, null))
            {
                throw new ShimException(ErrorKind.AlreadyExists, $"create {id}: container already exists");
            }
        }
        try
        {
            var container = request.Checkpoint.Length > 0
                ? CreateForRestore(request, options)
                : await CreateContainerAsync(request, options, ct).ConfigureAwait(false);
            lock (_gate)
            {
                _containers[id] = container;
            }
            return new CreateTaskResponse { Pid = (uint)container.Init.Pid };
        }
        catch
        {
            lock (_gate)
            {
                _containers.Remove(id);
            }
            throw;
        }
    }

    private async Task<Container> CreateContainerAsync(CreateTaskRequest request, RuntimeOptions options, CancellationToken ct)
    {
        string id = request.Id, bundle = request.Bundle;
        WriteBundleFiles(bundle, options);
        var runc = new RuncClient(
            new RuncConfig(OptionsCodec.ResolveBinary(options.BinaryName), options.RuncRoot(_settings.Namespace), Path.Combine(bundle, "log.json"), options.SystemdCgroup),
            _runner);
        bool mounted = MountRootfs(request, bundle);
        ProcessIo? io = null;
        try
        {
            var stdio = new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal);
            io = ProcessIo.Open(stdio, options.IoUid, options.IoGid, id, _settings.Namespace);
            string pidFile = Path.Combine(bundle, "init.pid");
            _router.BeginStart();
            int pid;
            try
            {
                await runc.CreateAsync(id, new CreateOptions(bundle, pidFile, io.ConsoleSocketPath, options.NoPivotRoot, options.NoNewKeyring), io.RuncSide, ct).ConfigureAwait(false);
                pid = ReadPidFile(pidFile);
                await io.ReceiveConsoleAsync(ct).ConfigureAwait(false);
            }
            catch
            {
                _router.EndStart();
                throw;
            }
            io.Start();
            var init = new InitProcess(id, pid, stdio, io, runc, _events);
            var container = new Container(id, bundle, mounted, Container.SpecSharesPidNamespace(bundle), init) { InitExiting = KillAllIfSharedPidNamespace, Options = options, Namespace = _settings.Namespace };
            init.Container = container;
            WatchCgroup(container, pid);
            var early = _router.Track(pid, init);
            var created = new TaskCreate
            {
                ContainerId = id,
                Bundle = bundle,
                Io = new TaskIO { Stdin = request.Stdin, Stdout = request.Stdout, Stderr = request.Stderr, Terminal = request.Terminal },
                Checkpoint = request.Checkpoint,
                Pid = (uint)pid,
            };
            created.Rootfs.Add(request.Rootfs);
            _events.Publish(created);
            ShimLog.Info("container created", ShimLog.Field("id", id) + " " + ShimLog.Field("pid", pid));
            if (early is { } exit)
            {
                init.OnExit(exit);
            }
            return container;
        }
        catch
        {
            io?.Dispose();
            if (mounted)
            {
                Mounts.UnmountRecursive(Path.Combine(bundle, "rootfs"));
            }
            throw;
        }
    }

    private void WatchCgroup(Container container, int pid)
    {
        try
        {
            container.Cgroup = Cgroups.CgroupFactory.ForPid(pid);
        }
        catch (Exception ex) when (ex is ShimException or IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn("container cgroup not found; no stats or OOM events", ShimLog.Field("id", container.Id) + " " + ShimLog.Field("error", ex.Message));
            return;
        }
        if (container.Cgroup is Cgroups.CgroupV2 v2)
        {
            // as the Go shim does after create: every root controller usable down to the container
            Cgroups.CgroupV2Controllers.EnableAll(v2.Path);
        }
        if (_oom is null)
        {
            return;
        }
        try
        {
            // registered at create (as containerd 2.2+ does) so an OOM right after start is not missed
            _oom.Add(container.Id, container.Cgroup, id => _events.Publish(new TaskOOM { ContainerId = id }));
            container.BeforeInitExitEvent = c => _oom.Drain(c.Id);
        }
        catch (Exception ex) when (ex is ShimException or IOException or ErrnoException)
        {
            ShimLog.Warn("OOM watch not registered", ShimLog.Field("id", container.Id) + " " + ShimLog.Field("error", ex.Message));
        }
    }

    private static void KillAllIfSharedPidNamespace(Container container)
    {
        if (!container.SharesPidNamespace)
        {
            return;
        }
        // without a pid namespace of its own, the container's other processes outlive init: kill them
        _ = Task.Run(async () =>
        {
            try
            {
                await container.Init.Runc.KillAsync(container.Id, Signals.SIGKILL, all: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (RuncException ex)
            {
                ShimLog.Debug("kill --all after init exit", ShimLog.Field("id", container.Id) + " " + ShimLog.Field("error", ex.RuncMessage));
            }
        });
    }

    private static bool MountRootfs(CreateTaskRequest request, string bundle)
    {
        if (request.Rootfs.Count == 0)
        {
            return false;
        }
        string rootfs = Path.Combine(bundle, "rootfs");
        Directory.CreateDirectory(rootfs);
        File.SetUnixFileMode(rootfs, (UnixFileMode)Convert.ToInt32("711", 8));
        try
        {
            RootfsMounts.MountAll([.. request.Rootfs.Select(m => new MountRequest(m.Type, m.Source, m.Target, m.Options))], rootfs);
        }
        catch (MountException ex)
        {
            throw new ShimException(ex.BadInput ? ErrorKind.InvalidArgument : ErrorKind.Unknown, $"create {request.Id}: mounting rootfs failed: {ex.Message}", ex);
        }
        return true;
    }

    private static void WriteBundleFiles(string bundle, RuntimeOptions options)
    {
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        string optionsPath = Path.Combine(bundle, "options.json");
        File.WriteAllBytes(optionsPath, OptionsCodec.ToJson(options));
        File.SetUnixFileMode(optionsPath, mode);
        string runtimePath = Path.Combine(bundle, "runtime");
        File.WriteAllText(runtimePath, options.BinaryName);
        File.SetUnixFileMode(runtimePath, mode);
    }

    private static int ReadPidFile(string path)
    {
        string text = File.ReadAllText(path).Trim();
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) || pid <= 0)
        {
            throw new ShimException(ErrorKind.Internal, $"runc wrote an invalid pid \"{text}\" to {path}");
        }
        return pid;
    }
}
