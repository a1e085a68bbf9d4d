"""What an output is, in standard metadata: an XMP packet other tools read.

Every file stylize writes says it was made by a trained algorithm from a photo
(the IPTC digital source type ``compositeWithTrainedAlgorithmicMedia``), by which
software, in which painting's style, and with which options, so a stylised
portrait cannot silently pass for a photograph.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import metadata
from xml.sax.saxutils import escape, quoteattr

from .catalogue import Blend, Style
from .options import Options

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
STYLIZE_NS = "https://stylize.invalid/ns/1.0/"


def software() -> str:
    try:
        return f"stylize {metadata.version('stylize')}"
    except metadata.PackageNotFoundError:
        return "stylize"


def provenance_xmp(style: Style | Blend, options: Options) -> bytes:
    """The XMP packet for one output of ``style`` made with ``options``."""
    settings = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(options).items()}
    description = f"{style.title} by {style.artist}, repainted from a photograph by {software()}"
    fields = {
        "Iptc4xmpExt:DigitalSourceType": DIGITAL_SOURCE_TYPE,
        "xmp:CreatorTool": software(),
        "stylize:Style": style.name,
        "stylize:StyleTitle": style.title,
        "stylize:StyleArtist": style.artist,
        "stylize:StyleLicence": style.record.text("licence", "unknown"),
        "stylize:Options": json.dumps(settings, sort_keys=True),
    }
    attributes = "\n   ".join(f"{key}={quoteattr(value)}" for key, value in fields.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '   xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '   xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '   xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        f'   xmlns:stylize="{STYLIZE_NS}"\n'
        f"   {attributes}>\n"
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(description)}</rdf:li></rdf:Alt>'
        "</dc:description>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode("utf-8")


def read_provenance(xmp: bytes | str) -> dict[str, str]:
    """The fields of a packet written by ``provenance_xmp`` (local names -> values), for checks and tests."""
    import xml.etree.ElementTree as ET

    text = xmp.decode("utf-8") if isinstance(xmp, bytes) else xmp
    start, end = text.index("<x:xmpmeta"), text.index("</x:xmpmeta>") + len("</x:xmpmeta>")
    root = ET.fromstring(text[start:end])
    fields: dict[str, str] = {}
    for element in root.iter():
        for key, value in element.attrib.items():
            fields[key.rsplit("}", 1)[-1]] = value
        if element.tag.endswith("}li") and element.text:
            fields["description"] = element.text
    return fields


def made_by_stylize(xmp: bytes | str | None) -> bool:
    """Whether an image's XMP is a packet stylize wrote (so a batch never takes its own outputs as inputs)."""
    if not xmp:
        return False
    try:
        fields = read_provenance(xmp)
    except (ValueError, UnicodeDecodeError, SyntaxError):  # ElementTree's ParseError is a SyntaxError
        return False
    made_by_ai = fields.get("DigitalSourceType") == DIGITAL_SOURCE_TYPE
    return made_by_ai and fields.get("CreatorTool", "").startswith("stylize")
