using Containerd.Task.V2;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Options;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Runc;
using Shim.Os.Mounting;

namespace Shim.Core.Service;

public sealed partial class TaskService
{
    /// <summary>Create: mount the rootfs, open stdio, runc create, publish TaskCreate.</summary>
    public async Task<CreateTaskResponse> CreateAsync(CreateTaskRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
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
        var runc = RuncFor(bundle, options);
        bool mounted = MountRootfs(request, bundle);
        try
        {
            var stdio = new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal);
            var init = new InitProcess(id, stdio, runc, NewSequencer(id));
            var container = new Container(id, bundle, mounted, Container.SpecSharesPidNamespace(bundle), init) { Options = options, Namespace = _settings.Namespace, Stdio = _stdio };
            string pidFile = Path.Combine(bundle, BundleFiles.InitPid);
            var plan = new StartPlan(_router, pidFile, options.IoUid, options.IoGid, _settings.Namespace,
                (io, token) => runc.CreateAsync(id, new CreateOptions(bundle, pidFile, io.ConsoleSocketPath, options.NoPivotRoot, options.NoNewKeyring), io.RuncSide, token))
            {
                Announce = events => events.Created(request, init.Pid),
                BeforeStartEvent = pid => WatchCgroup(container, pid),
                Stdio = _stdio,
            };
            await ProcessStarter.StartAsync(init, plan, ct).ConfigureAwait(false);
            _stdio.Log.Info("container created", ShimLog.Field("id", id) + " " + ShimLog.Field("pid", init.Pid));
            return container;
        }
        catch
        {
            // a step after runc create failed (the start attempt killed the process): runc's record goes too
            await DeleteQuietlyAsync(runc, id).ConfigureAwait(false);
            if (mounted)
            {
                Mounts.UnmountRecursive(Path.Combine(bundle, BundleFiles.Rootfs));
            }
            throw;
        }
    }

    /// <summary>runc delete --force of a container whose create failed; "does not exist" (runc create cleaned up itself) is the usual answer.</summary>
    private async Task DeleteQuietlyAsync(RuncClient runc, string id)
    {
        try
        {
            await runc.DeleteAsync(id, force: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (RuncException ex) when (!ex.IsNotFound)
        {
            _stdio.Log.Warn("delete after a failed create failed", ShimLog.Field("id", id) + " " + ShimLog.Field("error", ex.Message));
        }
        catch (RuncException)
        {
        }
    }

    /// <summary>The exit order of a new container: OOM events are drained right before init's TaskExit.</summary>
    private ExitSequencer NewSequencer(string id) => new(_events, _settings.ExitTiming, exit => DrainOom(id, exit), _stdio.Log);

    /// <summary>Reports the container's OOM kills not reported yet; the init's exit status may attribute one the cgroup went with.</summary>
    private void DrainOom(string id, ChildExit exit)
    {
        if (_oom?.Drain(id, exit.Status) == true)
        {
            _stdio.Log.Info("OOM kill counted from the parent cgroup: the container's was removed before it was read", ShimLog.Field("id", id));
        }
    }

    private RuncClient RuncFor(string bundle, RuntimeOptions options) => new(
        new RuncConfig(OptionsCodec.ResolveBinary(options.BinaryName), options.RuncRoot(_settings.Namespace), Path.Combine(bundle, BundleFiles.RuncLog), options.SystemdCgroup)
        {
            CallTimeout = _settings.RuncCallTimeout,
        },
        _runner);

    private void WatchCgroup(Container container, int pid)
    {
        Cgroups.ICgroup cgroup;
        try
        {
            cgroup = Cgroups.CgroupFactory.ForPid(pid);
            container.UseCgroup(cgroup);
        }
        catch (Exception ex) when (ex is ShimException or IOException or UnauthorizedAccessException)
        {
            _stdio.Log.Warn("container cgroup not found; no stats or OOM events", ShimLog.Field("id", container.Id) + " " + ShimLog.Field("error", ex.Message));
            return;
        }
        if (cgroup is Cgroups.CgroupV2 v2)
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
            _oom.Add(container.Id, cgroup, _events.Oom);
        }
        catch (Exception ex) when (ex is ShimException or IOException or ErrnoException)
        {
            _stdio.Log.Warn("OOM watch not registered", ShimLog.Field("id", container.Id) + " " + ShimLog.Field("error", ex.Message));
        }
    }

    private bool MountRootfs(CreateTaskRequest request, string bundle)
    {
        if (request.Rootfs.Count == 0)
        {
            return false;
        }
        string rootfs = Path.Combine(bundle, BundleFiles.Rootfs);
        Directory.CreateDirectory(rootfs);
        File.SetUnixFileMode(rootfs, (UnixFileMode)Convert.ToInt32("711", 8));
        try
        {
            RootfsMounts.MountAll([.. request.Rootfs.Select(m => new MountRequest(m.Type, m.Source, m.Target, m.Options))], rootfs, _stdio.Reaper);
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
        string optionsPath = Path.Combine(bundle, BundleFiles.Options);
        File.WriteAllBytes(optionsPath, OptionsCodec.ToJson(options));
        File.SetUnixFileMode(optionsPath, mode);
        string runtimePath = Path.Combine(bundle, BundleFiles.Runtime);
        File.WriteAllText(runtimePath, options.BinaryName);
        File.SetUnixFileMode(runtimePath, mode);
    }
}
