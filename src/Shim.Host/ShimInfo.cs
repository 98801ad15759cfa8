using System.Reflection;

namespace Shim.Host;

/// <summary>Names and version of this shim.</summary>
internal static class ShimInfo
{
    /// <summary>The runtime name containerd knows us by.</summary>
    public const string RuntimeName = "io.containerd.runcsharp.v2";

    /// <summary>Binary name containerd derives from the runtime name.</summary>
    public const string BinaryName = "containerd-shim-runcsharp-v2";

    public static string Version =>
        typeof(ShimInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.1.0";

    public static void PrintVersion()
    {
        Console.Out.Write($"{BinaryName}:\n  Runtime: {RuntimeName}\n  Version: {Version}\n  .NET: {Environment.Version}\n");
        Console.Out.Flush();
    }
}
