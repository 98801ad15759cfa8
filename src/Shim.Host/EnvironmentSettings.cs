using Shim.Core.Cli;
using Shim.Core.Logging;
using Shim.Runc;

namespace Shim.Host;

/// <summary>
/// The settings serve mode reads from its environment (README, Settings): a value in use is
/// logged once at start, an unusable one is ignored with a warning naming the default kept.
/// </summary>
internal static class EnvironmentSettings
{
    private delegate T? Parser<T>(string? value, out string? problem) where T : struct;

    /// <summary>The short runc calls' watchdog: RUNCSHARP_RUNC_TIMEOUT, else runc's default.</summary>
    public static TimeSpan RuncCallTimeout(ShimLogger log) =>
        Read(log, "runc watchdog", RuncTimeoutSetting.Variable, RuncTimeoutSetting.Parse, RuncConfig.DefaultCallTimeout, "seconds", static t => t.TotalSeconds);

    /// <summary>RUNCSHARP_MAX_CONNECTIONS, else the server's default.</summary>
    public static int MaxConnections(ShimLogger log, int fallback) =>
        Read(log, "ttrpc connection bound", ServerBoundSettings.MaxConnections, ServerBoundSettings.ParseCount, fallback, "connections", static n => n);

    /// <summary>RUNCSHARP_MAX_REQUESTS_IN_FLIGHT, else the server's default.</summary>
    public static int MaxRequestsInFlight(ShimLogger log, int fallback) =>
        Read(log, "ttrpc in-flight bound", ServerBoundSettings.MaxRequestsInFlight, ServerBoundSettings.ParseCount, fallback, "requests", static n => n);

    /// <summary>RUNCSHARP_FRAME_TIMEOUT, else the server's default.</summary>
    public static TimeSpan FrameTimeout(ShimLogger log, TimeSpan fallback) =>
        Read(log, "ttrpc frame timeout", ServerBoundSettings.FrameTimeout, ServerBoundSettings.ParseSeconds, fallback, "seconds", static t => t.TotalSeconds);

    private static T Read<T>(ShimLogger log, string what, string variable, Parser<T> parse, T fallback, string unit, Func<T, object> shown)
        where T : struct
    {
        string? value = Environment.GetEnvironmentVariable(variable);
        if (parse(value, out string? problem) is { } parsed)
        {
            log.Info($"{what} from the environment", ShimLog.Field(variable, value) + " " + ShimLog.Field(unit, shown(parsed)));
            return parsed;
        }
        if (problem is not null)
        {
            log.Warn($"ignored {variable}: {problem}", ShimLog.Field("value", value) + " " + ShimLog.Field(unit, shown(fallback)));
        }
        return fallback;
    }
}
