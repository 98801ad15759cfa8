using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Protos;

namespace Shim.Core.Options;

/// <summary>The one rule for options that arrive as an Any: none means defaults, an unknown type or bad bytes is an invalid argument.</summary>
internal static class AnyOptions
{
    /// <summary>Decodes <paramref name="any"/> with <paramref name="byName"/> (type name → value, null for an unknown type).</summary>
    public static T Decode<T>(Any? any, string what, Func<string, ByteString, T?> byName)
        where T : class, new()
    {
        if (any is null || (any.TypeUrl.Length == 0 && any.Value.IsEmpty))
        {
            return new T();
        }
        try
        {
            return byName(TypeUrls.NameOf(any.TypeUrl), any.Value)
                ?? throw new ShimException(ErrorKind.InvalidArgument, $"{what} of type {any.TypeUrl} are not supported");
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"malformed {what} of type {any.TypeUrl}: {ex.Message}", ex);
        }
    }
}
