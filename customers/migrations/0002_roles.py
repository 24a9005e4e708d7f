"""The portal's roles, as groups: Sales and Installers look up customers; Admins also
review the lookup history."""

from django.db import migrations

ROLES = {
    "Sales": ["look_up_customer"],
    "Installers": ["look_up_customer"],
    "Admins": ["look_up_customer", "view_lookupevent"],
}
PERMISSION_NAMES = {
    "look_up_customer": "Can look up a customer by project ID",
    "view_lookupevent": "Can view lookup event",
}


def create_roles(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    # Permissions are normally made after migrate; the groups need them now.
    content_type, _ = ContentType.objects.get_or_create(app_label="customers", model="lookupevent")
    permissions = {
        codename: Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSION_NAMES.items()
    }
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*(permissions[codename] for codename in codenames))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
