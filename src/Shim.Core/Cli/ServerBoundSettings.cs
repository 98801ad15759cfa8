using System.Globalization;

namespace Shim.Core.Cli;

/// <summary>
/// The bounds of the shim's ttrpc server, overridable from its environment like
/// <see cref="RuncTimeoutSetting"/> (containerd hands its own environment to its shims, so they are
/// set on the daemon): <c>RUNCSHARP_MAX_CONNECTIONS</c>, <c>RUNCSHARP_MAX_REQUESTS_IN_FLIGHT</c>
/// (per connection) and <c>RUNCSHARP_FRAME_TIMEOUT</c> (seconds a peer may stall inside a frame).
/// </summary>
public static class ServerBoundSettings
{
    /// <summary>Connections served at once.</summary>
    public const string MaxConnections = "RUNCSHARP_MAX_CONNECTIONS";

    /// <summary>Calls running at once on one connection.</summary>
    public const string MaxRequestsInFlight = "RUNCSHARP_MAX_REQUESTS_IN_FLIGHT";

    /// <summary>Seconds a frame may take once its peer left the shim waiting inside it.</summary>
    public const string FrameTimeout = "RUNCSHARP_FRAME_TIMEOUT";

    // far above any real need; past it a typo (an extra zero or three) would only remove the bound
    private const int LargestCount = 65536;

    /// <summary>
    /// The count <paramref name="value"/> gives (a positive decimal integer), or null when it is
    /// unset or not usable; then <paramref name="problem"/> says why (null when unset).
    /// </summary>
    public static int? ParseCount(string? value, out string? problem)
    {
        problem = null;
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int count))
        {
            problem = "not a whole number";
            return null;
        }
        if (count < 1)
        {
            problem = "under 1";
            return null;
        }
        if (count > LargestCount)
        {
            problem = $"over {LargestCount}";
            return null;
        }
        return count;
    }

    /// <summary>The timeout <paramref name="value"/> gives, read as <see cref="RuncTimeoutSetting.Parse"/> reads seconds.</summary>
    public static TimeSpan? ParseSeconds(string? value, out string? problem) => RuncTimeoutSetting.Parse(value, out problem);
}
