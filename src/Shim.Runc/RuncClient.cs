using System.Text.Json;

namespace Shim.Runc;

/// <summary>
/// Typed runc commands for one container's settings, run with the configured binary (runc or a
/// compatible runtime such as crun); errors name that binary and carry its own text.
/// </summary>
public sealed class RuncClient(RuncConfig config, IRuncRunner runner)
{
    /// <summary>The settings every call uses.</summary>
    public RuncConfig Config { get; } = config;

    /// <summary><c>runc create</c>; the container gets runc's stdio from <paramref name="io"/>.</summary>
    public Task CreateAsync(string id, CreateOptions options, RuncIo io, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        return RunAsync("create", RuncArgs.Create(Config, id, options), io, ct, Unbounded);
    }

    /// <summary><c>runc start</c>.</summary>
    public Task StartAsync(string id, CancellationToken ct) => RunAsync("start", RuncArgs.Start(Config, id), RuncIo.Captured, ct, Unbounded);

    /// <summary>
    /// <c>runc exec --detach</c> of <paramref name="processJson"/> (an OCI process spec, written to a
    /// 0600 temp file for the call); the process gets runc's stdio from <paramref name="io"/>.
    /// </summary>
    public async Task ExecAsync(string id, ReadOnlyMemory<byte> processJson, string pidFile, string? consoleSocket, RuncIo io, CancellationToken ct)
    {
        using var spec = ProcessSpecFile.Write(processJson.Span);
        await RunAsync("exec", RuncArgs.Exec(Config, id, new ExecOptions(spec.Path, pidFile, consoleSocket)), io, ct).ConfigureAwait(false);
    }

    /// <summary><c>runc kill</c>.</summary>
    public Task KillAsync(string id, int signal, bool all, CancellationToken ct) =>
        RunAsync("kill", RuncArgs.Kill(Config, id, signal, all), RuncIo.Captured, ct);

    /// <summary><c>runc delete</c>.</summary>
    public Task DeleteAsync(string id, bool force, CancellationToken ct) =>
        RunAsync("delete", RuncArgs.Delete(Config, id, force), RuncIo.Captured, ct, Unbounded);

    /// <summary><c>runc pause</c>.</summary>
    public Task PauseAsync(string id, CancellationToken ct) => RunAsync("pause", RuncArgs.Pause(Config, id), RuncIo.Captured, ct);

    /// <summary><c>runc resume</c>.</summary>
    public Task ResumeAsync(string id, CancellationToken ct) => RunAsync("resume", RuncArgs.Resume(Config, id), RuncIo.Captured, ct);

    /// <summary><c>runc update --resources FILE</c> with the LinuxResources JSON in a 0600 temp file for the call.</summary>
    public async Task UpdateAsync(string id, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct)
    {
        using var resources = ProcessSpecFile.Write(resourcesJson.Span, "runc-resources");
        await RunAsync("update", RuncArgs.Update(Config, id, resources.Path), RuncIo.Captured, ct).ConfigureAwait(false);
    }

    /// <summary><c>runc checkpoint</c>; CRIU's own log lands in the options' work path (dump.log).</summary>
    public Task CheckpointAsync(string id, CheckpointOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        return RunAsync("checkpoint", RuncArgs.Checkpoint(Config, id, options), RuncIo.Captured, ct, Unbounded);
    }

    /// <summary>
    /// <c>runc restore --detach</c>; the restored process gets runc's stdio from <paramref name="io"/>.
    /// The binary is asked what it is first (<see cref="FlavourAsync"/>): crun refuses runc's
    /// <c>--no-subreaper</c>.
    /// </summary>
    public async Task RestoreAsync(string id, RestoreOptions options, RuncIo io, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        RuntimeFlavour flavour = await FlavourAsync(ct).ConfigureAwait(false);
        await RunAsync("restore", RuncArgs.Restore(Config, id, options, flavour), io, ct, Unbounded).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>BINARY --version</c> read as a <see cref="RuntimeFlavour"/>; a binary that fails to answer
    /// is taken for runc (its real error comes from the call that follows).
    /// </summary>
    internal async Task<RuntimeFlavour> FlavourAsync(CancellationToken ct)
    {
        try
        {
            var result = await RunAsync("--version", [Config.Binary, "--version"], RuncIo.Captured, ct).ConfigureAwait(false);
            return RuntimeFlavours.FromVersion(result.Stdout);
        }
        catch (RuncException)
        {
            return RuntimeFlavour.Runc;
        }
    }

    /// <summary><c>runc features</c>: the OCI features JSON document.</summary>
    public async Task<byte[]> FeaturesAsync(CancellationToken ct)
    {
        var args = new List<string> { Config.Binary, "features" };
        var result = await RunAsync("features", args, RuncIo.Captured, ct).ConfigureAwait(false);
        return result.Stdout;
    }

    /// <summary><c>runc ps --format json</c>: the pids of the container's processes.</summary>
    public async Task<IReadOnlyList<int>> PsAsync(string id, CancellationToken ct)
    {
        var result = await RunAsync("ps", RuncArgs.Ps(Config, id), RuncIo.Captured, ct).ConfigureAwait(false);
        return ParsePids(result.Stdout);
    }

    /// <summary>Parses runc's <c>ps --format json</c> output (a JSON array of pids, or null).</summary>
    public static IReadOnlyList<int> ParsePids(ReadOnlySpan<byte> json)
    {
        var pids = new List<int>();
        var reader = new Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int pid))
            {
                pids.Add(pid);
            }
        }
        return pids;
    }

    // Calls that run the container's hooks (create: prestart/createRuntime/createContainer, start:
    // poststart, delete: poststop) or CRIU (checkpoint, restore of a large container) take as long
    // as they take: like containerd's shim (go-runc's exec.CommandContext), only the caller's
    // cancellation ends them. The short calls keep the watchdog, so a wedged runc cannot hold a
    // kill, ps, pause or exec (and the exit handling waiting on it) for ever.
    private const bool Unbounded = false;

    private async Task<RuncResult> RunAsync(string verb, List<string> args, RuncIo io, CancellationToken ct, bool watched = true)
    {
        string binary = args[0];
        // the log is appended to by every call of this container: only what this call wrote is its
        // error (a runtime that fails before it logs, e.g. crun on an option it does not know, says
        // so on stderr alone; an older error in the log would be the wrong reason)
        long logStart = RuncLog.Size(Config.LogPath);
        RuncResult result;
        using (var watchdog = watched ? CancellationTokenSource.CreateLinkedTokenSource(ct) : null)
        {
            watchdog?.CancelAfter(Config.CallTimeout);
            try
            {
                result = await runner.RunAsync(args, io, watchdog?.Token ?? ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (watched && !ct.IsCancellationRequested)
            {
                throw new RuncException(binary, verb, -1, $"no answer within {Config.CallTimeout.TotalSeconds:0.#} s; {RuncException.NameOf(binary)} was killed");
            }
            catch (Shim.Os.ErrnoException ex)
            {
                // posix_spawn reports the exec failure of the child (ENOENT, EACCES...): name the binary, not the syscall
                throw RuncException.NotStarted(binary, verb, ex.Reason);
            }
        }
        if (result.Truncated)
        {
            // checked first: a runc cut off at the limit usually dies of SIGPIPE, whose status says nothing
            throw new RuncException(binary, verb, result.ExitCode, $"{RuncException.NameOf(binary)} printed more than {RuncRunner.OutputLimit / (1024 * 1024)} MiB; its output was cut off");
        }
        if (result.ExitCode != 0)
        {
            string message = RuncLog.LastError(Config.LogPath, logStart)
                ?? (result.Stderr.Length > 0 ? result.Stderr : $"exit status {result.ExitCode}");
            throw new RuncException(binary, verb, result.ExitCode, message);
        }
        return result;
    }
}
