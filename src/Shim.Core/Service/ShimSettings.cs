namespace Shim.Core.Service;

/// <summary>What the shim was started with (flags and environment).</summary>
public sealed record ShimSettings
{
    /// <summary>containerd namespace (-namespace).</summary>
    public required string Namespace { get; init; }
    /// <summary>Task id the shim was started for (-id); with grouping, the first container.</summary>
    public required string Id { get; init; }
    /// <summary>containerd's gRPC socket (-address).</summary>
    public string Address { get; init; } = "";
    /// <summary>containerd's ttrpc socket for events (TTRPC_ADDRESS).</summary>
    public string TtrpcAddress { get; init; } = "";
    /// <summary>-debug was given.</summary>
    public bool Debug { get; init; }
    /// <summary>Watchdog of the short runc calls (RUNCSHARP_RUNC_TIMEOUT, else runc's default).</summary>
    public TimeSpan RuncCallTimeout { get; init; } = Shim.Runc.RuncConfig.DefaultCallTimeout;

    /// <summary>How long an exit waits for the client to read the output its process left.</summary>
    internal Processes.ExitTiming ExitTiming { get; init; } = Processes.ExitTiming.Default;
}
