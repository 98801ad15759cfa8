using System.Reflection;

namespace Shim.Host;

/// <summary>Names and version of this shim.</summary>
internal static class ShimInfo
{
    /// <summary>The runtime name containerd knows us by.</summary>
    public const string RuntimeName = "io.containerd.runcsharp.v2";

    /// <summary>Binary name containerd derives from the runtime name.</summary>
    public const string BinaryName = "containerd-shim-runcsharp-v2";

    private static string Informational =>
        typeof(ShimInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The version without the source revision.</summary>
    public static string Version => Informational.Split('+')[0];

    /// <summary>The source revision the binary was built from, if known.</summary>
    public static string Revision => Informational.Contains('+', StringComparison.Ordinal) ? Informational.Split('+')[1] : "";

    public static void PrintVersion()
    {
        Console.Out.Write($"{BinaryName}:\n  Runtime: {RuntimeName}\n  Version: {Version}\n  Revision: {Revision}\n  .NET: {Environment.Version}\n");
        Console.Out.Flush();
    }
}
