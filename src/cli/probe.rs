//! A test message with the field shapes kpi.v1 may not have yet (a map of messages with a
//! oneof, like `attributes`; a map with integer keys; a list of integers; a nested
//! message), built from descriptor protos the way kpi.v1's are, for the importer's tests.

use prost_reflect::{DescriptorPool, MessageDescriptor};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};
use prost_types::{MessageOptions, OneofDescriptorProto};

fn field(name: &str, number: i32, label: Label, ty: Type) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(label as i32),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

fn of_type(mut field: FieldDescriptorProto, type_name: &str) -> FieldDescriptorProto {
    field.type_name = Some(type_name.into());
    field
}

fn map_entry(name: &str, key: Type, value: FieldDescriptorProto) -> DescriptorProto {
    DescriptorProto {
        name: Some(name.into()),
        field: vec![field("key", 1, Label::Optional, key), value],
        options: Some(MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A message with the shapes kpi.v1 does not have (yet), built like kpi.v1's:
///
/// ```proto
/// message Choice { oneof value { string text = 1; string decimal = 2; bool flag = 3;
///                                google.protobuf.Timestamp time = 4; } }
/// message Probe { map<string, Choice> attributes = 1; repeated int64 numbers = 2;
///                 Choice choice = 3; map<int32, string> names = 4; }
/// ```
pub(crate) fn probe() -> MessageDescriptor {
    let member = |name, number, ty| {
        let mut member = field(name, number, Label::Optional, ty);
        member.oneof_index = Some(0);
        member
    };
    let choice = DescriptorProto {
        name: Some("Choice".into()),
        field: vec![
            member("text", 1, Type::String),
            member("decimal", 2, Type::String),
            member("flag", 3, Type::Bool),
            of_type(
                member("time", 4, Type::Message),
                ".google.protobuf.Timestamp",
            ),
        ],
        oneof_decl: vec![OneofDescriptorProto {
            name: Some("value".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let probe = DescriptorProto {
        name: Some("Probe".into()),
        field: vec![
            of_type(
                field("attributes", 1, Label::Repeated, Type::Message),
                ".probe.Probe.AttributesEntry",
            ),
            field("numbers", 2, Label::Repeated, Type::Int64),
            of_type(
                field("choice", 3, Label::Optional, Type::Message),
                ".probe.Choice",
            ),
            of_type(
                field("names", 4, Label::Repeated, Type::Message),
                ".probe.Probe.NamesEntry",
            ),
        ],
        nested_type: vec![
            map_entry(
                "AttributesEntry",
                Type::String,
                of_type(
                    field("value", 2, Label::Optional, Type::Message),
                    ".probe.Choice",
                ),
            ),
            map_entry(
                "NamesEntry",
                Type::Int32,
                field("value", 2, Label::Optional, Type::String),
            ),
        ],
        ..Default::default()
    };
    let mut pool = DescriptorPool::decode(kpi_proto::FILE_DESCRIPTOR_SET).unwrap();
    pool.add_file_descriptor_proto(FileDescriptorProto {
        name: Some("probe.proto".into()),
        package: Some("probe".into()),
        dependency: vec!["google/protobuf/timestamp.proto".into()],
        message_type: vec![choice, probe],
        syntax: Some("proto3".into()),
        ..Default::default()
    })
    .unwrap();
    pool.get_message_by_name("probe.Probe").unwrap()
}
